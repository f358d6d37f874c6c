"""What the client does with each server frame, against a scripted server that misbehaves on cue.

A real cluster seldom loses an ack or shows a client a gap; a script does it every time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chatcluster.client import (
    AnswerLostError,
    Client,
    Delete,
    Edit,
    Message,
    React,
    Reset,
    ServerError,
    StateChange,
)

# One connection's script: the socket and the number of the connection (0, 1, ...).
Script = Callable[[ServerConnection, int], Awaitable[None]]
WITHIN = 5.0


async def read(ws: ServerConnection, kind: str) -> dict[str, Any]:
    """The next client frame of type `kind`; a ping on the way is answered."""
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == kind:
            return frame
        if frame["type"] == "ping":
            await answer(ws, type="pong", ref=frame.get("ref"))


async def answer(ws: ServerConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


def message(seq: int) -> dict[str, Any]:
    return {"type": "message", "room": "r", "seq": seq, "user": "u", "body": f"m{seq}", "ts": "t"}


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    """A server that runs `script` on each connection; yields its /ws/ URL."""
    count = 0

    async def handle(ws: ServerConnection) -> None:
        nonlocal count
        count += 1
        await script(ws, count - 1)

    async with serve(handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/"


async def messages(client: Client, count: int) -> list[Message]:
    out: list[Message] = []
    async with asyncio.timeout(WITHIN):
        async for event in client:
            if isinstance(event, Message):
                out.append(event)
                if len(out) == count:
                    return out
    raise AssertionError(f"events ended after {out}")


async def test_a_publish_whose_ack_was_lost_is_sent_again_with_the_same_key() -> None:
    publishes: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        publishes.append(await read(ws, "publish"))
        if index == 0:
            ws.transport.abort()  # stored, maybe, but the ack never arrives
            return
        await answer(ws, type="ack", room="r", seq=7, ref=publishes[-1]["ref"])
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        assert await asyncio.wait_for(client.publish("r", "hello"), WITHIN) == 7
    assert len(publishes) == 2
    assert publishes[0]["key"] == publishes[1]["key"] and len(publishes[0]["key"]) <= 64
    assert [p["body"] for p in publishes] == ["hello", "hello"]


async def test_a_rate_limited_publish_waits_and_is_sent_again_with_its_key() -> None:
    publishes: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        publishes.append(await read(ws, "publish"))
        await answer(ws, type="error", code="rate_limited", detail="slow", retry_after=0.01, ref=publishes[0]["ref"])
        publishes.append(await read(ws, "publish"))
        await answer(ws, type="ack", room="r", seq=3, ref=publishes[1]["ref"])
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        assert await asyncio.wait_for(client.publish("r", "hi", key="mine"), WITHIN) == 3
    assert [p["key"] for p in publishes] == ["mine", "mine"]


async def test_a_gap_on_a_live_socket_is_repaired_with_since_and_each_message_handed_out_once() -> None:
    subscribes: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        subscribes.append(await read(ws, "subscribe"))
        await answer(ws, type="subscribed", room="r", seq=3, presence=[], ref=subscribes[0]["ref"])
        await ws.send(json.dumps(message(4)))
        await ws.send(json.dumps(message(6)))  # 5 was lost on the way
        subscribes.append(await read(ws, "subscribe"))
        for seq in (5, 6):
            await ws.send(json.dumps(message(seq)))
        await answer(ws, type="subscribed", room="r", seq=6, presence=[], recovered=True, ref=subscribes[1]["ref"])
        await ws.send(json.dumps(message(7)))
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        await client.subscribe("r")
        assert [m.seq for m in await messages(client, 4)] == [4, 5, 6, 7]
        assert client.repeats == 1
    assert "since" not in subscribes[0] and subscribes[1]["since"] == 4


async def test_after_a_drop_each_room_resumes_with_since_and_a_lost_recovery_is_reported() -> None:
    subscribes: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        subscribes.append(await read(ws, "subscribe"))
        if index == 0:
            await answer(ws, type="subscribed", room="r", seq=0, presence=[], ref=subscribes[-1]["ref"])
            await ws.send(json.dumps(message(1)))
            await ws.close(1013, "node busy, try again")
            return
        # More than the server keeps was missed: nothing replayed.
        await answer(ws, type="subscribed", room="r", seq=5000, presence=[], recovered=False, ref=subscribes[-1]["ref"])
        await ws.send(json.dumps(message(5001)))
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        await client.subscribe("r")
        seen = []
        async with asyncio.timeout(WITHIN):
            async for event in client:
                seen.append(event)
                if isinstance(event, Message) and event.seq == 5001:
                    break
    assert subscribes[1]["since"] == 1
    closed = next(e for e in seen if isinstance(e, StateChange) and e.state == "reconnecting")
    assert closed.code == 1013 and closed.retry_in is not None and closed.retry_in >= 0.25
    assert [e.seq for e in seen if isinstance(e, Message | Reset)] == [1, 5000, 5001]
    assert isinstance(seen[[getattr(e, "seq", None) for e in seen].index(5000)], Reset)


def change(kind: str, seq: int, target: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "room": "r", "seq": seq, "target": target, "user": "u", "ts": "t", **fields}


async def seq_events(client: Client, upto: int) -> list[Message | Edit | Delete | React]:
    out: list[Message | Edit | Delete | React] = []
    async with asyncio.timeout(WITHIN):
        async for event in client:
            if isinstance(event, Message | Edit | Delete | React):
                out.append(event)
                if event.seq == upto:
                    return out
    raise AssertionError(f"events ended after {out}")


async def test_edit_delete_and_react_return_their_acked_seq_and_a_refusal_raises_its_code() -> None:
    sent: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        for kind in ("edit", "react", "react", "delete", "publish"):
            sent.append(await read(ws, kind))
        edit, give, take, delete, publish = sent
        # Answered out of order: each answer finds its call by ref, the publish's too.
        await answer(ws, type="ack", room="r", seq=9, ref=publish["ref"])
        await answer(ws, type="error", code="forbidden", detail="not yours", ref=delete["ref"])
        await answer(ws, type="ack", room="r", seq=8, ref=take["ref"])
        await answer(ws, type="ack", room="r", seq=7, ref=give["ref"])
        await answer(ws, type="ack", room="r", seq=6, ref=edit["ref"])
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        calls = [
            asyncio.create_task(client.edit("r", 2, "fixed")),
            asyncio.create_task(client.react("r", 2, "👍")),
            asyncio.create_task(client.react("r", 2, "👍", on=False)),
            asyncio.create_task(client.delete("r", 3)),
            asyncio.create_task(client.publish("r", "hello")),
        ]
        done = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), WITHIN)
    edited, given, taken, refused, published = done
    assert (edited, given, taken, published) == (6, 7, 8, 9)
    assert isinstance(refused, ServerError) and refused.code == "forbidden" and refused.detail == "not yours"
    assert [{k: v for k, v in f.items() if k != "ref"} for f in sent[:4]] == [
        {"type": "edit", "room": "r", "target": 2, "body": "fixed"},
        {"type": "react", "room": "r", "target": 2, "emoji": "👍", "on": True},
        {"type": "react", "room": "r", "target": 2, "emoji": "👍", "on": False},
        {"type": "delete", "room": "r", "target": 3},
    ]


async def test_after_a_drop_delete_and_react_are_sent_again_and_an_unanswered_edit_raises() -> None:
    first: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        if index == 0:
            for kind in ("edit", "delete", "react"):
                first.append(await read(ws, kind))
            ws.transport.abort()  # done, maybe, but no answer arrives
            return
        # Everything the new socket carries, up to a history asked for once the others are answered.
        while not again or again[-1]["type"] != "history":
            frame = json.loads(await ws.recv())
            if frame["type"] == "ping":
                await answer(ws, type="pong", ref=frame.get("ref"))
                continue
            again.append(frame)
            if len(again) == 2:
                await answer(ws, type="ack", room="r", seq=5, ref=again[0]["ref"])
                await answer(ws, type="ack", room="r", seq=4, ref=again[1]["ref"])
        await answer(ws, type="history", room="r", messages=[], ref=again[-1]["ref"])
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        edited = asyncio.create_task(client.edit("r", 1, "fixed"))
        deleted = asyncio.create_task(client.delete("r", 2))
        reacted = asyncio.create_task(client.react("r", 1, "🎉"))
        with pytest.raises(AnswerLostError):
            await asyncio.wait_for(edited, WITHIN)
        assert await asyncio.wait_for(deleted, WITHIN) == 5
        assert await asyncio.wait_for(reacted, WITHIN) == 4
        assert await asyncio.wait_for(client.history("r"), WITHIN) == []
    assert [f["type"] for f in again] == ["delete", "react", "history"]
    assert again[:2] == first[1:]  # the same frames, refs and all


async def test_changes_come_in_seq_order_with_messages_and_a_gap_among_them_is_repaired() -> None:
    subscribes: list[dict[str, Any]] = []

    async def script(ws: ServerConnection, index: int) -> None:
        subscribes.append(await read(ws, "subscribe"))
        await answer(ws, type="subscribed", room="r", seq=3, presence=[], ref=subscribes[0]["ref"])
        await ws.send(json.dumps(change("edit", 4, 3, body="m3!")))
        await ws.send(json.dumps(change("react", 6, 3, emoji="👍", on=True)))  # 5 was lost on the way
        subscribes.append(await read(ws, "subscribe"))
        await ws.send(json.dumps(change("delete", 5, 2)))
        await ws.send(json.dumps(change("react", 6, 3, emoji="👍", on=True)))
        await answer(ws, type="subscribed", room="r", seq=6, presence=[], recovered=True, ref=subscribes[1]["ref"])
        await ws.send(json.dumps(message(7)))
        await ws.wait_closed()

    async with scripted(script) as url, Client(url, "t") as client:
        await client.subscribe("r")
        got = await seq_events(client, upto=7)
        assert [(type(e).__name__, e.seq) for e in got] == [
            ("Edit", 4),
            ("Delete", 5),
            ("React", 6),
            ("Message", 7),
        ]
        assert client.repeats == 1 and client.last_seq("r") == 7
    assert subscribes[1]["since"] == 4
