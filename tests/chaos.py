"""Clients for chaos tests that behave like the browser client: they survive drops.

A `Follower` keeps one room complete: it reconnects (to the next port) when its socket
closes, re-subscribes with `since`, drops repeats by seq and repairs a gap with `since`.
A `Publisher` sends one message at a time with an idempotency key and retries it, with
the same key, after `unavailable` or a lost socket, until it is acked.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets

from chatcluster.client import frames as wire
from chatcluster.client.frames import Ack, Error, Message, Subscribed

CONNECT_TIMEOUT = 3.0


async def connect(port: int, token: str) -> websockets.ClientConnection:
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/?token={token}",
        additional_headers={"Origin": f"http://127.0.0.1:{port}"},
        open_timeout=CONNECT_TIMEOUT,
        max_queue=None,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# Timings of the clusters that chaos tests and the soak break: a killed node's users are
# swept within seconds, publishers are machines rather than people.
CHAOS_ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    "DRAIN_GRACE": "1",
    "CHAT_PUBLISH_RATE": "1000",
    "CHAT_PUBLISH_BURST": "1000",
    "SEND_QUEUE_MAX": "200",
    "CHAT_TAIL_CHECK": "0.5",
}
# Presence must be true again within PRESENCE_TTL + 5 s of a recovery.
PRESENCE_SETTLE = float(CHAOS_ENV["PRESENCE_TTL"]) + 5


@dataclass(eq=False)
class Follower:
    name: str
    token: str
    ports: list[int]
    room: str
    # Seqs applied in order: the room as this client's user sees it.
    delivered: list[int] = field(default_factory=list)
    # Every message frame's seq as it arrived, repeats and all.
    raw: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    connects: int = 0
    gaps: int = 0
    # time.monotonic() of every `subscribed` answer: when the client was whole again.
    subscribed_at: list[float] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _turn: int = 0

    @property
    def last(self) -> int | None:
        return self.delivered[-1] if self.delivered else self._start

    _start: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Until first subscribed a follower keeps to its first port, so a test knows
            # which node holds it; after that it moves on along its ports.
            port = self.ports[self._turn % len(self.ports)] if self.ready.is_set() else self.ports[0]
            self._turn += 1
            try:
                ws = await connect(port, self.token)
            except (OSError, websockets.InvalidHandshake, TimeoutError):
                await asyncio.sleep(random.uniform(0.05, 0.3))
                continue
            self.connects += 1
            try:
                await self._follow(ws, stop)
            except websockets.ConnectionClosed as exc:
                self.close_codes.append(exc.rcvd.code if exc.rcvd else None)
                await asyncio.sleep(random.uniform(0.0, 0.2))
            finally:
                await ws.close()

    async def _subscribe(self, ws: websockets.ClientConnection) -> None:
        await ws.send(wire.encode_subscribe(self.room, since=self.last, ref="sub"), text=True)

    async def _follow(self, ws: websockets.ClientConnection, stop: asyncio.Event) -> None:
        await self._subscribe(ws)
        buffer: dict[int, Message] = {}
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.2):
                    frame = wire.decode(await ws.recv())
            except TimeoutError:
                continue
            if isinstance(frame, Subscribed) and frame.ref == "sub":
                if self.last is None:
                    self._start = frame.seq
                self.subscribed_at.append(time.monotonic())
                self.ready.set()
            elif isinstance(frame, Error) and frame.ref == "sub":
                await asyncio.sleep(0.3)
                await self._subscribe(ws)
            elif isinstance(frame, Message) and frame.room == self.room:
                self.raw.append(frame.seq)
                if self.last is None or frame.seq <= self.last:
                    continue
                buffer[frame.seq] = frame
                while self.last + 1 in buffer:
                    applied = buffer.pop(self.last + 1)
                    self.delivered.append(applied.seq)
                    sent = applied.body.split("@", 1)[-1]
                    if sent.replace(".", "", 1).isdigit():
                        self.latencies.append(time.time() - float(sent))
                if buffer and min(buffer) > self.last + 1:
                    self.gaps += 1
                    buffer.clear()
                    await self._subscribe(ws)

    def complete_upto(self, last: int) -> bool:
        return self.last is not None and self.last >= last

    def describe(self) -> str:
        return (
            f"{self.name} in {self.room}: last {self.last}, {len(self.delivered)} applied, raw tail {self.raw[-8:]},"
            f" {self.connects} connects, closes {self.close_codes}, {self.gaps} gaps,"
            f" subscribed {len(self.subscribed_at)}x"
        )


@dataclass(eq=False)
class Publisher:
    name: str
    token: str
    ports: list[int]
    room: str
    interval: float
    # Publish at most this many messages, then stop by itself.
    limit: int | None = None
    # Characters added to each body, to make a room busy in bytes as well as frames.
    padding: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    unavailable: int = 0
    reconnects: int = 0
    ack_waits: list[float] = field(default_factory=list)
    _turn: int = 0
    _count: itertools.count[int] = field(default_factory=itertools.count)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`; the message in flight when it is set is still seen through."""
        key: str | None = None
        ws: websockets.ClientConnection | None = None
        while key is not None or not (stop.is_set() or len(self.acked) == self.limit):
            if ws is None:
                port = self.ports[self._turn % len(self.ports)]
                self._turn += 1
                try:
                    ws = await connect(port, self.token)
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    await asyncio.sleep(random.uniform(0.05, 0.3))
                    continue
            if key is None:
                key = f"{self.name}-{next(self._count)}-{uuid.uuid4().hex[:6]}"
                first_try = time.monotonic()
            try:
                body = f"{'.' * self.padding}{key}@{time.time()}"
                await ws.send(wire.encode_publish(self.room, body, key=key, ref=key), text=True)
                answer = await self._answer(ws, key)
            except (websockets.ConnectionClosed, TimeoutError):
                # The ack may have been lost with the socket: send again, same key.
                self.reconnects += 1
                await ws.close()
                ws = None
                continue
            if isinstance(answer, Ack):
                self.acked[key] = answer.seq
                self.ack_waits.append(time.monotonic() - first_try)
                key = None
                await asyncio.sleep(self.interval)
            elif isinstance(answer, Error) and answer.code in ("unavailable", "rate_limited"):
                self.unavailable += 1
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"{self.name}: unexpected answer {answer}")
        if ws is not None:
            await ws.close()

    @staticmethod
    async def _answer(ws: websockets.ClientConnection, ref: str) -> wire.ServerFrame | wire.Unknown:
        async with asyncio.timeout(10):
            while True:
                frame = wire.decode(await ws.recv())
                if frame.ref == ref:
                    return frame


@dataclass(eq=False)
class Traffic:
    """Followers and publishers running until told to stop."""

    followers: list[Follower]
    publishers: list[Publisher]
    stop_following: asyncio.Event = field(default_factory=asyncio.Event)
    stop_publishing: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    publishing: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, followers: list[Follower], publishers: list[Publisher]) -> Traffic:
        traffic = cls(followers, publishers)
        traffic.tasks = [asyncio.create_task(f.run(traffic.stop_following)) for f in followers]
        await wait_for(lambda: all(f.ready.is_set() for f in followers), 20, "every follower subscribed")
        traffic.publishing = [asyncio.create_task(p.run(traffic.stop_publishing)) for p in publishers]
        return traffic

    @property
    def acked(self) -> int:
        return sum(len(p.acked) for p in self.publishers)

    @property
    def last_acked(self) -> int:
        return max((seq for p in self.publishers for seq in p.acked.values()), default=0)

    async def finish(self) -> int:
        """Stop publishing, check what was stored, and wait until every follower holds it all."""
        self.stop_publishing.set()
        await asyncio.gather(*self.publishing)
        total = self.acked
        seqs = sorted(seq for p in self.publishers for seq in p.acked.values())
        # One stored message per publish, whatever was retried: seqs 1..total, no repeats.
        assert seqs == list(range(1, total + 1))
        await wait_for(
            lambda: all(f.complete_upto(total) for f in self.followers),
            30,
            lambda: f"every follower at seq {total}: " + "; ".join(f.describe() for f in self.followers),
        )
        await self.stop()
        for follower in self.followers:
            assert follower.delivered == list(range(1, total + 1)), follower.name
        return total

    async def stop(self) -> None:
        self.stop_publishing.set()
        self.stop_following.set()
        await asyncio.gather(*self.publishing, *self.tasks)


async def wait_for(condition: Any, timeout: float, what: str | Callable[[], str]) -> None:
    """`what` may be a callable: the state it describes is read when the wait fails."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.05)


async def presence_of(port: int, token: str, room: str) -> set[str]:
    """The users a fresh socket's `subscribed` lists in `room`, its own user left out."""
    ws = await connect(port, token)
    try:
        await ws.send(wire.encode_subscribe(room, ref="look"), text=True)
        frame = await Publisher._answer(ws, "look")
    finally:
        await ws.close()
    if not isinstance(frame, Subscribed):
        raise AssertionError(f"presence look at {room} on {port}: {frame}")
    return set(frame.presence)


async def presence_converges(
    port: int, token: str, watcher: str, room: str, expected: set[str], timeout: float, maybe: set[str] = frozenset()
) -> None:
    """Until `room`'s presence, seen on `port` by `watcher`, is `expected` plus any of `maybe` (within `timeout` s)."""
    deadline = time.monotonic() + timeout
    seen: set[str] | str = "nothing yet"
    while True:
        try:
            seen = await presence_of(port, token, room) - {watcher}
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError, AssertionError) as exc:
            seen = repr(exc)
        if isinstance(seen, set) and expected <= seen <= expected | maybe:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"presence of {room} not {sorted(expected)} within {timeout} s: {seen}")
        await asyncio.sleep(0.2)


async def stalled_socket(port: int, token: str, room: str) -> websockets.ClientConnection:
    """A client that subscribes and then never reads again, with a tiny receive window.

    Drop it with `ws.transport.abort()`: closing the raw socket would leave the loop's
    transport holding its descriptor number, and the next connect that gets the number
    fails with "File descriptor N is used by transport".
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/?token={token}",
        sock=sock,
        additional_headers={"Origin": f"http://127.0.0.1:{port}"},
        max_queue=1,
    )
    await ws.send(wire.encode_subscribe(room, ref="s"), text=True)
    async with asyncio.timeout(10):
        while wire.decode(await ws.recv()).ref != "s":
            pass
    # Stop the library's reader too: from here on nothing drains the kernel buffer.
    ws.transport.pause_reading()
    return ws
