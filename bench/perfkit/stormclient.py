"""The reconnect storm's clients: what `client.js` does, over picows (bench/perfkit/storm.py drives them)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

import msgspec
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from chatcluster.client import frames as wire

if TYPE_CHECKING:
    from bench.perfkit.storm import Storm

TEXT = WSMsgType.TEXT
# client.js: full jitter over base x 2^attempt, capped; 1012 (draining) comes back at once.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
DRAIN_SPREAD = 0.3
CLOSE_DRAINING = 1012
# A close that retrying cannot fix (client.js stops on these).
FATAL = (4401, 4403)
# A gap still open this long after a repair answered is repaired again (client.js).
REPAIR_RECHECK = 1.0
HANDSHAKE_TIMEOUT = 10.0
# Seconds a socket being set up may take from open to subscribed before the next one goes.
SETUP_WAIT = 15.0
# Bounds: attempts per client, initial handshakes in flight, and phases in seconds.
MAX_ATTEMPTS = 60
# The code picows' peer gives when the TCP connection ends without a close frame.
NO_CLOSE_FRAME = 1006


class Frame(msgspec.Struct):
    type: str
    room: str = ""
    seq: int = 0
    ref: str = ""
    code: str = ""
    recovered: bool | None = None


DECODE = msgspec.json.Decoder(Frame).decode


def backoff(attempt: int) -> float:
    return random.random() * min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)


class RoomView:
    """One client's view of one room, as client.js keeps it."""

    __slots__ = ("buffer", "catching", "first", "last", "name", "repairs", "skipped", "sub_ref", "subscribed", "target")

    def __init__(self, name: str) -> None:
        self.name = name
        self.first: int | None = None  # seq when first subscribed: later seqs are owed to us
        self.last: int | None = None  # last contiguous seq held
        self.buffer: set[int] = set()  # held, past a gap
        self.subscribed = False
        self.catching = False
        self.sub_ref = ""
        self.target = 0  # the room's seq in the last `subscribed`
        self.skipped: list[tuple[int, int]] = []  # ranges given up (recovered: false)
        self.repairs = 0

    def holds(self, seq: int) -> bool:
        if self.last is None or seq > self.last:
            return seq in self.buffer
        return not any(lo <= seq <= hi for lo, hi in self.skipped)


class Link(WSListener):
    """One socket of a client; the client outlives it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.code = NO_CLOSE_FRAME
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.client.on_open(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            self.client.on_text(self, frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            self.code = int.from_bytes(frame.get_payload_as_bytes()[:2] or b"\0\0", "big")
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closed.done():
            self.closed.set_result(self.code)
        self.client.on_drop(self)


class Client:
    """A protocol client with client.js' reconnect, recovery and dedupe (no DOM, no pings)."""

    def __init__(self, storm: Storm, token: str, rooms: list[str], port: int) -> None:
        self.storm = storm
        self.token = token
        self.port = port
        self.rooms = {room: RoomView(room) for room in rooms}
        self.link: Link | None = None
        self.attempt = 0  # for the backoff; 0 again once caught up
        self.attempts = 0  # connect attempts, all of them
        self.connections = 0
        self.ready = asyncio.Event()  # first time every room is subscribed
        self.back_at = 0  # perf_counter_ns when back after the kill (0: not yet)
        self.ready_ns = 0
        self.stopping = False
        self.refs = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/?token={self.token}"

    def send(self, data: bytes) -> None:
        """One frame from an encoder of `chatcluster.client.frames`."""
        if self.link is not None:
            self.link.transport.send(TEXT, data)

    # --- connection ---------------------------------------------------------------

    async def run(self, deadline: float, limit: asyncio.Semaphore | None = None) -> None:
        """Connect, and reconnect after every drop with backoff, until stopped or out of time/attempts."""
        while not self.stopping and time.monotonic() < deadline and self.attempts < MAX_ATTEMPTS:
            self.attempts += 1
            link = Link(self)
            try:
                if limit is not None and not self.ready.is_set():
                    # Setting up: a bounded number of handshakes and subscribes in flight.
                    async with limit:
                        await self._open(link)
                        ready = asyncio.ensure_future(self.ready.wait())
                        await asyncio.wait([ready, link.closed], timeout=SETUP_WAIT)
                        ready.cancel()
                else:
                    await self._open(link)
            except (WSError, OSError, TimeoutError) as exc:
                self.storm.handshake_failures[f"{type(exc).__name__} on {self.storm.node_name(self.port)}"] += 1
                code = NO_CLOSE_FRAME
            else:
                try:
                    code = await asyncio.wait_for(asyncio.shield(link.closed), max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                self.storm.close_codes[f"{code} on {self.storm.node_name(self.port)}"] += 1
            if self.stopping:
                break
            if code in FATAL:
                self.storm.fatal += 1
                break
            delay = random.random() * DRAIN_SPREAD if code == CLOSE_DRAINING else backoff(self.attempt)
            self.attempt += 1
            if self.storm.killed_ns:
                # The balancer would send the client to a live node: node B.
                self.port = self.storm.fallback_port
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    async def _open(self, link: Link) -> None:
        await ws_connect(lambda: link, self.url, websocket_handshake_timeout=HANDSHAKE_TIMEOUT)

    def on_open(self, link: Link) -> None:
        self.link = link
        self.connections += 1
        for view in self.rooms.values():
            self.subscribe(view)

    def on_drop(self, link: Link) -> None:
        if self.link is link:
            self.link = None
            for view in self.rooms.values():
                view.subscribed = view.catching = False

    def close(self) -> None:
        self.stopping = True
        if self.link is not None:
            self.link.transport.send_close(WSCloseCode.OK)
            self.link.transport.disconnect()

    # --- rooms ----------------------------------------------------------------------

    def subscribe(self, view: RoomView) -> None:
        self.refs += 1
        view.sub_ref = f"s{self.refs}"
        if view.last is not None:
            view.catching = True
        self.send(wire.encode_subscribe(view.name, since=view.last, ref=view.sub_ref))

    def on_text(self, link: Link, payload: bytes) -> None:
        try:
            frame = DECODE(payload)
        except msgspec.DecodeError:
            self.storm.errors["bad frame"] += 1
            return
        kind = frame.type
        if kind == "message":
            self.on_message(frame)
        elif kind == "subscribed":
            self.on_subscribed(frame)
        elif kind == "ack":
            self.storm.on_ack(frame)
        elif kind == "error":
            self.storm.errors[f"error {frame.code}"] += 1
            if not self.storm.on_error(frame):
                self.on_subscribe_error(frame)

    def on_subscribe_error(self, f: Frame) -> None:
        for view in self.rooms.values():
            if view.sub_ref != f.ref:
                continue
            view.catching = False
            if f.code == "unavailable":
                # client.js: Redis or the database briefly away; ask again shortly, same `since`.
                delay = 0.5 + backoff(2)
                asyncio.get_running_loop().call_later(delay, self.resubscribe, view)
            elif f.code == "bad_request" and view.last is not None:
                # The server holds less than we do (its data was reset): start over, and say so.
                self.storm.resets += 1
                view.skipped.append((view.last + 1, 1 << 62))
                view.last = None
                view.buffer.clear()
                self.subscribe(view)

    def resubscribe(self, view: RoomView) -> None:
        if self.link is not None and not self.stopping:
            self.subscribe(view)

    def on_message(self, m: Frame) -> None:
        view = self.rooms.get(m.room)
        if view is None:
            return
        if (view.last is not None and m.seq <= view.last) or m.seq in view.buffer:
            self.storm.repeats += 1
            return
        if view.last is None or m.seq > view.last + 1:
            view.buffer.add(m.seq)
            if view.last is not None and view.subscribed and not view.catching:
                view.repairs += 1
                self.storm.repairs += 1
                self.subscribe(view)
            return
        view.last = m.seq
        self.drain(view)
        self.check_back()

    def drain(self, view: RoomView) -> None:
        assert view.last is not None
        while view.last + 1 in view.buffer:
            view.buffer.discard(view.last + 1)
            view.last += 1
        view.buffer = {seq for seq in view.buffer if seq > view.last}

    def on_subscribed(self, f: Frame) -> None:
        view = self.rooms.get(f.room)
        if view is None or f.ref != view.sub_ref:
            return
        view.subscribed = True
        view.catching = False
        view.target = f.seq
        if view.last is None:
            view.first = view.last = f.seq
        elif f.recovered is False:
            self.storm.not_recovered += 1
            if f.seq > view.last:
                view.skipped.append((view.last + 1, f.seq))
                view.last = f.seq
        self.drain(view)
        if view.buffer:
            asyncio.get_running_loop().call_later(REPAIR_RECHECK, self.recheck, view)
        if all(v.subscribed for v in self.rooms.values()) and not self.ready.is_set():
            self.ready_ns = time.perf_counter_ns()
            self.ready.set()
        self.check_back()

    def recheck(self, view: RoomView) -> None:
        if view.buffer and view.subscribed and not view.catching and self.link is not None:
            view.repairs += 1
            self.storm.repairs += 1
            self.subscribe(view)

    def settled(self) -> bool:
        """Connected, every room subscribed and caught up with the seq its `subscribed` gave."""
        return self.link is not None and all(
            v.subscribed and not v.catching and v.last is not None and v.last >= v.target for v in self.rooms.values()
        )

    def state(self) -> str:
        if self.link is None:
            return "gave up" if self.attempts >= MAX_ATTEMPTS else "no socket (backoff or handshake)"
        if not all(v.subscribed for v in self.rooms.values()):
            return "socket open, subscribe unanswered"
        return "catching up"

    def check_back(self) -> None:
        for view in self.rooms.values():
            if not view.subscribed or view.catching or view.last is None or view.last < view.target:
                return
        self.attempt = 0  # client.js resets its backoff only once fully caught up
        if self.storm.killed_ns and not self.back_at and self.connections > 1:
            self.back_at = time.perf_counter_ns()
