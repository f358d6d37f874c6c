from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcluster import protocol
from chatcluster.errors import ChatError


def test_subscribe_with_since_parses_into_a_typed_command() -> None:
    command = protocol.parse_frame('{"type":"subscribe","room":"lobby","since":7,"ref":"a"}')
    assert command == protocol.Subscribe(room="lobby", since=7, ref="a")


def test_change_frames_parse_into_typed_commands() -> None:
    assert protocol.parse_frame('{"type":"edit","room":"r","target":3,"body":"b"}') == protocol.Edit(
        room="r", target=3, body="b"
    )
    assert protocol.parse_frame('{"type":"delete","room":"r","target":3}') == protocol.Delete(room="r", target=3)
    assert protocol.parse_frame('{"type":"react","room":"r","target":3,"emoji":"👍"}') == protocol.React(
        room="r", target=3, emoji="👍", on=True
    )


def test_unknown_fields_such_as_a_forged_user_are_ignored() -> None:
    command = protocol.parse_frame('{"type":"publish","room":"r","body":"hi","user":"admin"}')
    assert command == protocol.Publish(room="r", body="hi")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        "42",
        "{}",
        '{"type":"nope"}',
        '{"type":"subscribe"}',
        '{"type":"subscribe","room":"UPPER"}',
        '{"type":"subscribe","room":"../etc"}',
        '{"type":"subscribe","room":"x\\n"}',
        '{"type":"subscribe","room":"' + "a" * 65 + '"}',
        '{"type":"subscribe","room":{"x":1}}',
        '{"type":"subscribe","room":"r","since":-1}',
        '{"type":"subscribe","room":"r","since":9223372036854775808}',
        '{"type":"subscribe","room":"r","since":"3"}',
        '{"type":"history","room":"r","limit":0}',
        '{"type":"publish","room":"r","body":5}',
        '{"type":"publish","room":"r","body":"\\ud800"}',
        '{"type":"ping","ref":"' + "x" * 65 + '"}',
        '{"type":"edit","room":"r","body":"x"}',
        '{"type":"edit","room":"r","target":0,"body":"x"}',
        '{"type":"edit","room":"r","target":"1","body":"x"}',
        '{"type":"edit","target":1,"body":"x"}',
        '{"type":"delete","room":"r","target":-3}',
        '{"type":"react","room":"r","target":1,"emoji":["x"]}',
        '{"type":"react","room":"r","target":1,"emoji":"' + "x" * 65 + '"}',
        '{"type":"react","room":"r","target":1,"emoji":"x","on":1}',
    ],
)
def test_bad_frames_are_bad_request(text: str) -> None:
    with pytest.raises(ChatError) as caught:
        protocol.parse_frame(text)
    assert caught.value.code == "bad_request"


def test_ref_of_recovers_the_ref_of_an_unparseable_frame() -> None:
    assert protocol.ref_of('{"type":"nope","ref":"r1"}') == "r1"
    assert protocol.ref_of('{"ref": 5}') is None
    assert protocol.ref_of("garbage") is None


def test_error_frame_carries_code_detail_ref_and_retry_after() -> None:
    frame = json.loads(protocol.error_frame(ChatError("rate_limited", "slow", retry_after=0.5), "r"))
    assert frame == {"type": "error", "code": "rate_limited", "detail": "slow", "retry_after": 0.5, "ref": "r"}


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.dictionaries(
            st.text(max_size=8),
            st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)),
            max_size=5,
        ).map(json.dumps),
    )
)
def test_any_text_gives_a_command_or_a_chat_error(text: str) -> None:
    try:
        command = protocol.parse_frame(text)
    except ChatError as exc:
        assert exc.code == "bad_request"
    else:
        assert isinstance(command, protocol.Command)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["subscribe", "unsubscribe", "publish", "typing", "history", "ping", "pong", "edit", "delete", "react"]
            )
        },
        optional={
            name: _values
            for name in (
                "room",
                "since",
                "body",
                "key",
                "before",
                "limit",
                "ref",
                "user",
                "seq",
                "target",
                "emoji",
                "on",
            )
        },
    )
)
def test_frames_of_known_types_with_any_field_values_never_raise_anything_else(frame: dict[str, object]) -> None:
    text = json.dumps(frame)
    try:
        command = protocol.parse_frame(text)
    except ChatError as exc:
        assert exc.code == "bad_request"
        ref = protocol.ref_of(text)
        assert ref is None or (isinstance(ref, str) and len(ref) <= protocol.MAX_REF)
    else:
        assert command.ref is None or len(command.ref) <= protocol.MAX_REF
        if isinstance(command, protocol.ROOM_COMMANDS):
            assert re.fullmatch(r"[a-z0-9_-]{1,64}", command.room)
