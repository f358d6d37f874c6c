"""chatcluster.host: host code publishes like a socket and reads presence, sync and async."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from chatcluster.host import ChatError, room_presence, room_publish, room_publish_sync
from chatcluster.models import Message
from chatcluster.signals import message_posted
from tests.chat.test_consumers import connect, next_of, send

pytestmark = pytest.mark.django_db(transaction=True)


def room() -> str:
    return "h-" + uuid.uuid4().hex[:10]


async def user(name: str) -> User:
    made, _ = await sync_to_async(User.objects.get_or_create)(username=name)
    return made


async def test_a_host_publish_is_stored_under_the_next_seq_and_reaches_subscribers() -> None:
    r = room()
    ws: WebsocketCommunicator = await connect("watcher")
    await send(ws, type="subscribe", room=r)
    await next_of(ws, "subscribed")
    published = await room_publish(room=r, user=await user("bot"), body="deployed v2")
    assert (published.room, published.seq, published.created) == (r, 1, True)
    frame = await next_of(ws, "message")
    assert (frame["seq"], frame["user"], frame["body"]) == (1, "bot", "deployed v2")
    assert await room_presence(room=r) == ["watcher"]
    await ws.disconnect()


async def test_a_repeated_key_stores_once_and_answers_the_first_seq() -> None:
    r, bot = room(), await user("bot")
    first = await room_publish(room=r, user=bot, body="once", key="job-17")
    again = await room_publish(room=r, user=bot, body="once", key="job-17")
    assert (again.seq, again.created) == (first.seq, False)
    assert await Message.objects.filter(room__slug=r).acount() == 1


async def test_the_rate_limit_applies_unless_the_host_opts_out(chat_conf: Any) -> None:
    chat_conf.CHAT_PUBLISH_RATE, chat_conf.CHAT_PUBLISH_BURST = 0.01, 2
    r, bot = room(), await user("limited")
    for i in range(2):
        await room_publish(room=r, user=bot, body=f"m{i}")
    with pytest.raises(ChatError) as caught:
        await room_publish(room=r, user=bot, body="one too many")
    assert caught.value.code == "rate_limited"
    assert (await room_publish(room=r, user=bot, body="system notice", rate_limited=False)).seq == 3


async def test_bad_input_is_refused_with_the_protocols_codes() -> None:
    bot = await user("bot")
    for slug, body, code in [("Not A Slug", "x", "bad_request"), (room(), "   ", "bad_request")]:
        with pytest.raises(ChatError) as caught:
            await room_publish(room=slug, user=bot, body=body)
        assert caught.value.code == code
    with pytest.raises(ChatError):
        await room_presence(room="no spaces allowed")


def test_the_sync_api_works_from_sync_code() -> None:
    bot = User.objects.create_user("sync-bot")
    r = room()
    assert room_publish_sync(room=r, user=bot, body="from a command").seq == 1
    assert Message.objects.get(room__slug=r).body == "from a command"


async def test_message_posted_reaches_receivers_in_seq_order_after_the_ack() -> None:
    r, bot = room(), await user("bot")
    got: list[tuple[str, int, str, dict[str, Any]]] = []
    done = asyncio.Event()

    def receiver(sender: Any, *, room: str, seq: int, user: Any, message: dict[str, Any], **kwargs: Any) -> None:
        got.append((room, seq, user.get_username(), message))
        if len(got) == 3:
            done.set()

    message_posted.connect(receiver, weak=False)
    try:
        for i in range(3):
            await room_publish(room=r, user=bot, body=f"m{i}")
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        message_posted.disconnect(receiver)
    assert [(room, seq, name) for room, seq, name, _ in got] == [(r, 1, "bot"), (r, 2, "bot"), (r, 3, "bot")]
    assert got[0][3] | {"ts": None} == {"type": "message", "room": r, "seq": 1, "user": "bot", "body": "m0", "ts": None}


async def test_a_failing_receiver_is_logged_and_stops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    r, bot = room(), await user("bot")
    seen = asyncio.Event()

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    def fine(sender: Any, **kwargs: Any) -> None:
        seen.set()

    message_posted.connect(broken, weak=False)
    message_posted.connect(fine, weak=False)
    try:
        assert (await room_publish(room=r, user=bot, body="still stored")).seq == 1
        async with asyncio.timeout(5):
            await seen.wait()
    finally:
        message_posted.disconnect(broken)
        message_posted.disconnect(fine)
    assert [r.name for r in caplog.records if "receiver bug" in r.getMessage() or r.exc_info] == ["django.dispatch"]
