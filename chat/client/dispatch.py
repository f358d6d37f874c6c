"""What the client does with each server frame, and the state that outlives a socket.

Rooms with their seq views, publishes waiting for an ack, requests waiting for an answer.
`Client` (connection.py) owns the socket: it calls `_opened`, `_on_text` and `_dropped`,
and provides the hooks at the top.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection

from chatcluster.client import frames, policy
from chatcluster.client.events import AnswerLostError, ChatClientError, Event, Reset, ServerError
from chatcluster.client.outbox import Outbox
from chatcluster.client.rooms import RoomState, Sequenced

logger = logging.getLogger("chatcluster.client")

Answer = frames.ServerFrame | frames.Unknown | None

# What becomes of a request whose socket drops before its answer:
# - "again": sent again on the next socket, for requests the server answers alike when
#   repeated (history, ping, delete, react);
# - "forget": answered None; nor is it sent without a socket (unsubscribe: the server ends
#   a dropped socket's subscriptions anyway);
# - "fail": AnswerLostError, for a request the server may have acted on and would act on
#   twice (edit). One not sent yet waits for the next socket.
OnDrop = Literal["again", "forget", "fail"]


@dataclass(eq=False)
class _Request:
    data: bytes
    future: asyncio.Future[Answer]
    on_drop: OnDrop
    sent: bool = False  # it went out on the current socket


class Dispatch:
    def __init__(self) -> None:
        self._ws: ClientConnection | None = None
        self._authed = False  # the current socket's first ping was answered
        self._hello: str | None = None
        self._rooms: dict[str, RoomState] = {}
        self._waiters: dict[str, list[asyncio.Future[frames.Subscribed]]] = {}
        self._outbox = Outbox()
        self._requests: dict[str, _Request] = {}
        self._repeats = 0
        self._prefix = secrets.token_hex(4)
        self._count = 0
        self._timers: set[asyncio.Task[None]] = set()

    # --- hooks: Client's -------------------------------------------------------------

    def _authenticated(self) -> None:
        """The current socket's credentials were accepted."""

    def _update_state(self) -> None:
        """Rooms started or stopped catching up."""

    async def _emit(self, event: Event) -> None:
        """Hand `event` to the user."""

    # --- the socket -----------------------------------------------------------------

    async def _opened(self) -> None:
        """A new socket: prove the credentials, resume every room with `since`, resend what waits."""
        self._authed = False
        self._hello = self._ref()
        await self._send(frames.encode_ping(ref=self._hello))
        for state in list(self._rooms.values()):
            await self._send_subscribe(state)
        for request in list(self._requests.values()):
            await self._send_request(request)
        await self._pump()

    def _dropped(self) -> None:
        self._ws = None
        self._authed = False
        self._outbox.dropped()
        for state in self._rooms.values():
            state.dropped()
        for ref, request in list(self._requests.items()):
            if request.on_drop == "again" or (request.on_drop == "fail" and not request.sent):
                continue  # it goes out on the next socket
            del self._requests[ref]
            if request.future.done():
                continue
            if request.on_drop == "forget":
                request.future.set_result(None)
            else:
                request.future.set_exception(
                    AnswerLostError("the socket dropped before the server answered; it may have been done")
                )

    async def _on_text(self, text: str | bytes) -> None:
        try:
            frame = frames.decode(text)
        except frames.FrameError:
            logger.warning("chat client: skipped a frame that is not a JSON object with a type: %.200r", text)
            return
        match frame:
            case frames.Message() | frames.Edit() | frames.Delete() | frames.React():
                await self._on_sequenced(frame.room, frame)
            case frames.Unknown() if frame.room is not None and frame.seq is not None:
                await self._on_sequenced(frame.room, frame)  # a newer server's event of the seq stream
            case frames.Subscribed():
                await self._on_subscribed(frame)
            case frames.Ack() if (request := self._requests.get(frame.ref or "")) is not None:
                if not request.future.done():
                    request.future.set_result(frame)  # an edit, delete or react
            case frames.Ack():
                self._outbox.acked(frame.ref, frame.seq)
                await self._pump()
            case frames.Error():
                await self._on_error(frame)
            case frames.Pong() if frame.ref is not None and frame.ref == self._hello:
                self._authed = True
                self._authenticated()
                self._update_state()
            case frames.Presence() if frame.room in self._rooms:
                self._rooms[frame.room].apply_presence(frame.joined, frame.left)
                await self._emit(frame)
            case frames.Typing() | frames.Unknown():
                await self._emit(frame)
            case frames.History() | frames.Pong() | frames.Unsubscribed():
                request = self._requests.get(frame.ref or "")
                if request is not None and not request.future.done():
                    request.future.set_result(frame)

    # --- rooms ----------------------------------------------------------------------

    async def _subscribe(self, room: str, since: int | None) -> frames.Subscribed:
        state = self._rooms.get(room)
        asked = since
        if state is None:
            state = self._rooms[room] = RoomState(room, last=since)
            asked = None
        waiter: asyncio.Future[frames.Subscribed] = self._future()
        waiters = self._waiters.setdefault(room, [])
        waiters.append(waiter)
        try:
            if self._ws is not None:
                await self._send_subscribe(state, asked)
            return await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    async def _unsubscribe(self, room: str) -> None:
        if self._rooms.pop(room, None) is None:
            return
        self._fail_waiters(room, ChatClientError(f"unsubscribed from {room!r}"))
        self._update_state()
        if self._ws is not None:
            await self._request(lambda ref: frames.encode_unsubscribe(room, ref=ref), on_drop="forget")

    async def _send_subscribe(self, state: RoomState, asked: int | None = None) -> None:
        since = state.next_since(asked)
        ref = self._ref()
        state.sent_subscribe(ref, since)
        self._update_state()
        await self._send(frames.encode_subscribe(state.name, since=since, ref=ref))

    async def _on_sequenced(self, room: str, frame: Sequenced) -> None:
        state = self._rooms.get(room)
        if state is None:
            return  # a room we left: frames sent before the server saw that
        ready = state.accept(frame)
        if ready is None:
            self._repeats += 1
            return
        for event in ready:
            await self._emit(event)
        if state.gap():
            await self._send_subscribe(state)  # repair: the server replays after `last`

    async def _on_subscribed(self, frame: frames.Subscribed) -> None:
        state = self._rooms.get(frame.room)
        if state is None or frame.ref != state.sub_ref:
            return  # an answer that a later subscribe of the room made stale
        ready, reset = state.on_subscribed(frame)
        joined, left = state.replace_presence(frame.presence)
        if reset:
            await self._emit(Reset(room=frame.room, seq=frame.seq))
        for event in ready:
            await self._emit(event)
        if joined or left:
            # Who came and went while this client was away.
            await self._emit(frames.Presence(room=frame.room, joined=joined, left=left))
        for waiter in self._waiters.pop(frame.room, []):
            if not waiter.done():
                waiter.set_result(frame)
        if state.buffer:
            self._later(policy.REPAIR_RECHECK, lambda: self._repair(frame.room))
        self._update_state()

    async def _repair(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is not None and state.gap():
            await self._send_subscribe(state)

    async def _resubscribe(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is not None and not state.subscribed and not state.catching and self._ws is not None:
            await self._send_subscribe(state)

    # --- publishes and requests -----------------------------------------------------

    async def _pump(self) -> None:
        if self._ws is None:
            return
        publish = self._outbox.next(asyncio.get_running_loop().time())
        if publish is not None:
            await self._send(frames.encode_publish(publish.room, publish.body, key=publish.key, ref=publish.ref))

    async def _request(self, build: Callable[[str], bytes], *, on_drop: OnDrop) -> Answer:
        if on_drop == "forget" and self._ws is None:
            return None
        ref = self._ref()
        request = self._requests[ref] = _Request(build(ref), self._future(), on_drop)
        try:
            await self._send_request(request)
            return await request.future
        finally:
            self._requests.pop(ref, None)

    async def _send_request(self, request: _Request) -> None:
        if self._ws is not None:
            # Counted as sent before the await: a drop during the send must not let it go twice.
            request.sent = True
            await self._send(request.data)

    async def _on_error(self, frame: frames.Error) -> None:
        ref = frame.ref
        if ref is None:
            if frame.room is not None and self._rooms.pop(frame.room, None) is not None:
                # Not an answer: the server ended our subscription (removed from a private room).
                self._fail_waiters(frame.room, ServerError(frame))
                self._update_state()
            await self._emit(frame)
            return
        if self._outbox.answered_by_error(frame):
            wait = self._outbox.refused(frame, asyncio.get_running_loop().time())
            if wait is not None:
                self._later(wait, self._pump)
            await self._pump()
        elif (request := self._requests.get(ref)) is not None:
            if not request.future.done():
                request.future.set_exception(ServerError(frame))
        elif (state := next((s for s in self._rooms.values() if s.sub_ref == ref), None)) is not None:
            await self._on_subscribe_error(state, frame)
        else:
            await self._emit(frame)

    async def _on_subscribe_error(self, state: RoomState, frame: frames.Error) -> None:
        state.catching = False
        if frame.code == "bad_request" and state.since is not None:
            # `since` is past the room's last seq: the server's data was reset. Start over.
            state.restart()
            await self._send_subscribe(state)
        elif frame.code == "unavailable":
            self._later(policy.retry_unavailable(), lambda: self._resubscribe(state.name))
        else:
            del self._rooms[state.name]
            if not self._fail_waiters(state.name, ServerError(frame)):
                await self._emit(frame)
        self._update_state()

    # --- plumbing -------------------------------------------------------------------

    async def _send(self, data: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(data, text=True)
        except websockets.ConnectionClosed:
            return False  # the reader sees the close and reconnects; what waits is resent
        return True

    def _ref(self) -> str:
        self._count += 1
        return f"{self._prefix}-{self._count}"

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def _later(self, delay: float, action: Callable[[], Awaitable[object]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except Exception:
                logger.exception("chat client: a delayed %s failed", getattr(action, "__name__", "action"))

        task = asyncio.create_task(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _cancel_timers(self) -> None:
        for task in self._timers:
            task.cancel()
        if self._timers:
            await asyncio.wait(list(self._timers))

    def _fail_waiters(self, room: str, error: Exception) -> bool:
        waiters = [w for w in self._waiters.pop(room, []) if not w.done()]
        for waiter in waiters:
            waiter.set_exception(error)
        return bool(waiters)

    def _fail_all(self, error: Exception) -> None:
        for room in list(self._waiters):
            self._fail_waiters(room, error)
        self._outbox.fail_all(error)
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_exception(error)
