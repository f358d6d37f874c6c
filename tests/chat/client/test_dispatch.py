"""What the client does with each server frame, against a scripted server that misbehaves on cue.

A real cluster seldom loses an ack or shows a client a gap; a script does it every time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from chatcluster.client import Client, Message, Reset, StateChange

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
