"""The consumer against a real Redis, through the project's ASGI application."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import OperationalError

from chatcluster.models import Membership, Room
from chatcluster.services.tokens import token_issue
from project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


def room() -> str:
    return "t-" + uuid.uuid4().hex[:10]


@database_sync_to_async
def token_for(username: str) -> str:
    user, _ = User.objects.get_or_create(username=username)
    return token_issue(user=user)[0]


async def connect(username: str, *, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    token = await token_for(username)
    ws = WebsocketCommunicator(application, f"/ws/?token={token}", headers=headers or [ORIGIN])
    connected, _ = await ws.connect()
    assert connected
    return ws


async def next_of(ws: WebsocketCommunicator, kind: str, timeout: float = 5) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.receive_from(timeout=timeout))
        if frame["type"] == kind:
            return frame


async def send(ws: WebsocketCommunicator, **frame: Any) -> None:
    await ws.send_to(text_data=json.dumps(frame))


async def test_a_socket_without_credentials_is_closed_4401() -> None:
    ws = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN])
    await ws.connect()
    assert (await ws.receive_output(5))["code"] == 4401


async def test_a_forged_token_is_closed_4401() -> None:
    ws = WebsocketCommunicator(application, "/ws/?token=nope", headers=[ORIGIN])
    await ws.connect()
    assert (await ws.receive_output(5))["code"] == 4401


async def test_a_database_outage_at_connect_closes_1013_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    token = await token_for("outage-db")

    def database_away(**kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr("chatcluster.ws_auth.token_user", database_away)
    ws = WebsocketCommunicator(application, f"/ws/?token={token}", headers=[ORIGIN])
    await ws.connect()
    closed = await ws.receive_output(5)
    assert closed["code"] == 1013 and "try again" in closed["reason"]


async def test_a_redis_outage_at_connect_closes_1013_not_1011(monkeypatch: pytest.MonkeyPatch) -> None:
    token = await token_for("outage-redis")

    async def redis_away(**kwargs: Any) -> bool:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("chatcluster.consumers.connection_open", redis_away)
    ws = WebsocketCommunicator(application, f"/ws/?token={token}", headers=[ORIGIN])
    await ws.connect()
    closed = await ws.receive_output(5)
    assert closed["code"] == 1013 and "try again" in closed["reason"]


async def test_a_token_socket_with_a_foreign_origin_is_closed_4403() -> None:
    token = await token_for("eve")
    ws = WebsocketCommunicator(application, f"/ws/?token={token}", headers=[(b"origin", b"http://evil.com")])
    await ws.connect()
    assert (await ws.receive_output(5))["code"] == 4403


async def test_a_token_socket_may_omit_origin() -> None:
    ws = await connect("amy", headers=[])
    await send(ws, type="ping", ref="p")
    assert await next_of(ws, "pong") == {"type": "pong", "ref": "p"}
    await ws.disconnect()


async def test_publish_is_acked_then_broadcast_to_subscribers() -> None:
    r = room()
    alice, bob = await connect("alice"), await connect("bob")
    for ws in (alice, bob):
        await send(ws, type="subscribe", room=r, ref="s")
        subscribed = await next_of(ws, "subscribed")
        assert subscribed["ref"] == "s" and subscribed["seq"] == 0
    await send(alice, type="publish", room=r, body="<b>hi</b>", ref="p1", user="mallory")
    assert await next_of(alice, "ack") == {"type": "ack", "room": r, "seq": 1, "ref": "p1"}
    message = await next_of(bob, "message")
    assert (message["seq"], message["user"], message["body"]) == (1, "alice", "<b>hi</b>")
    await alice.disconnect()
    await bob.disconnect()


async def test_subscribed_lists_presence_and_others_get_a_joined_diff() -> None:
    r = room()
    alice = await connect("alice")
    await send(alice, type="subscribe", room=r)
    assert (await next_of(alice, "subscribed"))["presence"] == ["alice"]
    bob = await connect("bob")
    await send(bob, type="subscribe", room=r)
    assert (await next_of(bob, "subscribed"))["presence"] == ["alice", "bob"]
    diff = await next_of(alice, "presence")
    while diff["joined"] != ["bob"]:
        diff = await next_of(alice, "presence")
    await bob.disconnect()
    left = await next_of(alice, "presence")
    assert left["left"] == ["bob"]
    await alice.disconnect()


async def test_malformed_frames_get_errors_and_the_socket_stays_open() -> None:
    ws = await connect("carol")
    for bad in ["{", "[]", '{"type":"launch","ref":"x"}', '{"type":"publish","room":"Bad!","body":"b"}']:
        await ws.send_to(text_data=bad)
        frame = await next_of(ws, "error")
        assert frame["code"] == "bad_request"
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await next_of(ws, "error"))["code"] == "bad_request"
    await send(ws, type="ping", ref="still")
    assert (await next_of(ws, "pong"))["ref"] == "still"
    await ws.disconnect()


async def test_resubscribing_with_since_replays_what_was_missed() -> None:
    r = room()
    alice = await connect("alice")
    await send(alice, type="subscribe", room=r)
    await next_of(alice, "subscribed")
    for i in range(4):
        await send(alice, type="publish", room=r, body=f"m{i}", ref=f"p{i}")
        await next_of(alice, "ack")
    late = await connect("late")
    await send(late, type="subscribe", room=r, since=1)
    replayed = [(await next_of(late, "message"))["seq"] for _ in range(3)]
    subscribed = await next_of(late, "subscribed")
    assert replayed == [2, 3, 4]
    assert subscribed["recovered"] is True and subscribed["seq"] == 4
    await alice.disconnect()
    await late.disconnect()


async def test_private_room_is_forbidden_to_non_members() -> None:
    r = room()

    @database_sync_to_async
    def make_private() -> None:
        owner = User.objects.create_user("owner")
        Membership.objects.create(room=Room.objects.create(slug=r, is_private=True), user=owner)

    await make_private()
    outsider = await connect("outsider")
    for frame in (
        {"type": "subscribe", "room": r},
        {"type": "publish", "room": r, "body": "x"},
        {"type": "history", "room": r},
    ):
        await send(outsider, **frame, ref="f")
        error = await next_of(outsider, "error")
        assert (error["code"], error["ref"]) == ("forbidden", "f")
    await outsider.disconnect()


async def test_history_frame_returns_messages_oldest_first() -> None:
    r = room()
    ws = await connect("dave")
    for i in range(5):
        await send(ws, type="publish", room=r, body=f"m{i}")
        await next_of(ws, "ack")
    await send(ws, type="history", room=r, before=5, limit=2)
    history = await next_of(ws, "history")
    assert [m["seq"] for m in history["messages"]] == [3, 4]
    await ws.disconnect()


async def test_publishing_past_the_burst_is_rate_limited_with_retry_after(chat_conf: Any) -> None:
    chat_conf.CHAT_PUBLISH_BURST = 3
    chat_conf.CHAT_PUBLISH_RATE = 1
    r = room()
    ws = await connect("flood")
    answers = []
    for i in range(5):
        await send(ws, type="publish", room=r, body=f"m{i}", ref=str(i))
        answers.append(await next_of(ws, "ack") if i < 3 else await next_of(ws, "error"))
    assert [a["type"] for a in answers] == ["ack"] * 3 + ["error"] * 2
    assert answers[3]["code"] == "rate_limited" and answers[3]["retry_after"] > 0
    await ws.disconnect()


async def test_a_join_storm_reaches_members_as_few_coalesced_presence_diffs() -> None:
    slug = room()
    watcher = await connect("watcher")
    await send(watcher, type="subscribe", room=slug)
    await next_of(watcher, "subscribed")
    joiners = [await connect(f"joiner{i}") for i in range(12)]
    for ws in joiners:
        await send(ws, type="subscribe", room=slug)
    for i, ws in enumerate(joiners):
        assert f"joiner{i}" in (await next_of(ws, "subscribed"))["presence"]
    seen: set[str] = set()
    diffs = 0
    while seen != {f"joiner{i}" for i in range(12)}:
        diffs += 1
        seen.update((await next_of(watcher, "presence"))["joined"])
    # Twelve joins inside a CHAT_PRESENCE_COALESCE window or two: far fewer frames than joins.
    assert diffs <= 4
    last = joiners[-1]
    # The last joiner had the whole list at subscribe and is not told of itself again.
    while not await last.receive_nothing(timeout=0.5):
        frame = json.loads(await last.receive_from())
        assert frame["type"] != "presence" or "joiner11" not in frame["joined"]
    for ws in [watcher, *joiners]:
        await ws.disconnect()


async def test_the_first_keys_after_a_send_show_as_typing_again() -> None:
    # The server forwards one typing frame per user and room per CHAT_TYPING_THROTTLE (2 s);
    # keys typed within 2 s after a send used to be swallowed, though others' pages had
    # just cleared "is typing" on the message.
    r = room()
    typist, watcher = await connect("typist"), await connect("watcher")
    for ws in (typist, watcher):
        await send(ws, type="subscribe", room=r)
        await next_of(ws, "subscribed")
    await send(typist, type="typing", room=r)
    assert (await next_of(watcher, "typing"))["user"] == "typist"
    await send(typist, type="publish", room=r, body="hello", ref="p")
    await next_of(typist, "ack")
    await next_of(watcher, "message")
    await send(typist, type="typing", room=r)
    assert (await next_of(watcher, "typing", timeout=1))["user"] == "typist"
    await typist.disconnect()
    await watcher.disconnect()
