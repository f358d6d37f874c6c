"""The client's frame codecs: every server frame of docs/protocol.md, every client frame."""

from __future__ import annotations

import json

import pytest

from chatcluster import protocol
from chatcluster.client import frames
from chatcluster.client.frames import (
    Ack,
    Delete,
    Edit,
    Error,
    History,
    HistoryMessage,
    Message,
    Pong,
    Presence,
    React,
    Subscribed,
    Typing,
    Unknown,
    Unsubscribed,
)

TS = "2025-01-05T10:00:00.123456+00:00"


@pytest.mark.parametrize(
    ("text", "frame"),
    [
        (
            '{"type":"message","room":"general","seq":40,"user":"bob","body":"hi","ts":"' + TS + '"}',
            Message(room="general", seq=40, user="bob", body="hi", ts=TS),
        ),
        (
            '{"type":"message","room":"g","seq":40,"user":"bob","body":"hi!","ts":"t","edited":"' + TS + '"}',
            Message(room="g", seq=40, user="bob", body="hi!", ts="t", edited=TS),
        ),
        (
            '{"type":"message","room":"g","seq":40,"user":"bob","body":"","ts":"t","deleted":true}',
            Message(room="g", seq=40, user="bob", body="", ts="t", deleted=True),
        ),
        (
            '{"type":"edit","room":"g","seq":43,"target":40,"user":"bob","body":"hi!","ts":"' + TS + '"}',
            Edit(room="g", seq=43, target=40, user="bob", body="hi!", ts=TS),
        ),
        (
            '{"type":"delete","room":"g","seq":44,"target":40,"user":"mod","ts":"' + TS + '"}',
            Delete(room="g", seq=44, target=40, user="mod", ts=TS),
        ),
        (
            '{"type":"react","room":"g","seq":45,"target":40,"user":"ann","emoji":"👍🏽","on":false,"ts":"t"}',
            React(room="g", seq=45, target=40, user="ann", emoji="👍🏽", on=False, ts="t"),
        ),
        ('{"type":"ack","room":"general","seq":42,"ref":"3"}', Ack(room="general", seq=42, ref="3")),
        (
            '{"type":"subscribed","room":"general","seq":41,"presence":["alice","bob"],"recovered":true,"ref":"2"}',
            Subscribed(room="general", seq=41, presence=["alice", "bob"], recovered=True, ref="2"),
        ),
        ('{"type":"subscribed","room":"g","seq":0,"presence":[]}', Subscribed(room="g", seq=0, presence=[])),
        ('{"type":"unsubscribed","room":"general","ref":"5"}', Unsubscribed(room="general", ref="5")),
        (
            '{"type":"presence","room":"general","joined":["carol"],"left":["bob"]}',
            Presence(room="general", joined=["carol"], left=["bob"]),
        ),
        ('{"type":"typing","room":"general","user":"bob"}', Typing(room="general", user="bob")),
        (
            '{"type":"history","room":"g","messages":[{"room":"g","seq":38,"user":"bob","body":"x","ts":"t"}],"ref":"4"}',
            History(room="g", messages=[HistoryMessage(room="g", seq=38, user="bob", body="x", ts="t")], ref="4"),
        ),
        (
            '{"type":"history","room":"g","messages":['
            '{"room":"g","seq":1,"user":"bob","body":"x2","ts":"t","edited":"e","reactions":{"👍":["ann","cy"]}},'
            '{"room":"g","seq":2,"user":"bob","ts":"t","deleted":true,"reactions":{}}]}',
            History(
                room="g",
                messages=[
                    HistoryMessage(
                        room="g", seq=1, user="bob", body="x2", ts="t", edited="e", reactions={"👍": ["ann", "cy"]}
                    ),
                    HistoryMessage(room="g", seq=2, user="bob", ts="t", deleted=True),
                ],
            ),
        ),
        (
            '{"type":"error","code":"rate_limited","detail":"slow down","retry_after":0.4,"ref":"7"}',
            Error(code="rate_limited", detail="slow down", retry_after=0.4, ref="7"),
        ),
        (
            '{"type":"error","code":"forbidden","detail":"removed","room":"secret"}',
            Error(code="forbidden", detail="removed", room="secret"),
        ),
        ('{"type":"pong","ref":"6"}', Pong(ref="6")),
    ],
)
def test_every_server_frame_decodes_to_its_type(text: str, frame: frames.ServerFrame) -> None:
    assert frames.decode(text) == frame
    assert frames.decode(text.encode()) == frame


def test_fields_a_newer_server_adds_are_ignored() -> None:
    assert frames.decode('{"type":"pong","v":2,"extra":{"a":1}}') == Pong()


def test_an_unknown_type_is_kept_with_every_field_and_its_place_in_the_seq_stream() -> None:
    text = '{"type":"pin","room":"general","seq":43,"target":40,"ref":"9"}'
    frame = frames.decode(text)
    assert frame == Unknown("pin", json.loads(text))
    assert isinstance(frame, Unknown) and (frame.room, frame.seq, frame.ref) == ("general", 43, "9")


def test_a_known_type_of_an_unexpected_shape_is_unknown_rather_than_an_error() -> None:
    frame = frames.decode('{"type":"message","room":"general","seq":"not a number"}')
    assert isinstance(frame, Unknown) and frame.type == "message" and frame.seq is None


@pytest.mark.parametrize("text", ["hello", '{"type":', "[1,2]", '"pong"', "null", '{"room":"x"}', '{"type":7}'])
def test_text_that_is_no_object_with_a_string_type_is_a_frame_error(text: str) -> None:
    with pytest.raises(frames.FrameError):
        frames.decode(text)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (frames.encode_subscribe("general"), {"type": "subscribe", "room": "general"}),
        (
            frames.encode_subscribe("general", since=0, ref="1"),
            {"type": "subscribe", "room": "general", "since": 0, "ref": "1"},
        ),
        (frames.encode_unsubscribe("general", ref="5"), {"type": "unsubscribe", "room": "general", "ref": "5"}),
        (frames.encode_publish("general", "hello"), {"type": "publish", "room": "general", "body": "hello"}),
        (
            frames.encode_publish("general", "hello", key="c7f0-17", ref="3"),
            {"type": "publish", "room": "general", "body": "hello", "key": "c7f0-17", "ref": "3"},
        ),
        (frames.encode_typing("general"), {"type": "typing", "room": "general"}),
        (frames.encode_history("general"), {"type": "history", "room": "general"}),
        (
            frames.encode_history("general", before=40, limit=2, ref="4"),
            {"type": "history", "room": "general", "before": 40, "limit": 2, "ref": "4"},
        ),
        (frames.encode_ping(), {"type": "ping"}),
        (frames.encode_ping(ref="6"), {"type": "ping", "ref": "6"}),
        (
            frames.encode_edit("general", 40, "hi!", ref="7"),
            {"type": "edit", "room": "general", "target": 40, "body": "hi!", "ref": "7"},
        ),
        (frames.encode_delete("general", 40), {"type": "delete", "room": "general", "target": 40}),
        (
            frames.encode_react("general", 40, "👍"),
            {"type": "react", "room": "general", "target": 40, "emoji": "👍", "on": True},
        ),
        (
            frames.encode_react("general", 40, "👍", on=False, ref="8"),
            {"type": "react", "room": "general", "target": 40, "emoji": "👍", "on": False, "ref": "8"},
        ),
    ],
)
def test_every_client_frame_encodes_only_the_fields_given(data: bytes, expected: dict[str, object]) -> None:
    assert json.loads(data) == expected


@pytest.mark.parametrize(
    ("data", "command"),
    [
        (frames.encode_subscribe("general", since=39, ref="2"), protocol.Subscribe(room="general", since=39, ref="2")),
        (frames.encode_unsubscribe("general"), protocol.Unsubscribe(room="general")),
        (
            frames.encode_publish("general", "héllo 👋", key="k"),
            protocol.Publish(room="general", body="héllo 👋", key="k"),
        ),
        (frames.encode_typing("general"), protocol.Typing(room="general")),
        (frames.encode_history("general", before=40, limit=2), protocol.History(room="general", before=40, limit=2)),
        (frames.encode_ping(ref="6"), protocol.Ping(ref="6")),
        (frames.encode_edit("general", 40, "hi! 👋"), protocol.Edit(room="general", target=40, body="hi! 👋")),
        (frames.encode_delete("general", 40, ref="9"), protocol.Delete(room="general", target=40, ref="9")),
        (frames.encode_react("general", 40, "🇫🇷"), protocol.React(room="general", target=40, emoji="🇫🇷", on=True)),
        (
            frames.encode_react("general", 40, "👍🏽", on=False),
            protocol.React(room="general", target=40, emoji="👍🏽", on=False),
        ),
    ],
)
def test_the_server_parses_every_encoded_frame_as_the_command_it_means(data: bytes, command: object) -> None:
    assert protocol.parse_frame(data.decode()) == command


def test_a_raw_frame_is_sent_with_exactly_its_fields() -> None:
    fields = {"type": "edit", "room": "general", "target": 40, "body": "hi!", "extra": {"x": [1]}}
    assert frames.decode_raw(frames.encode_raw(fields)) == fields
