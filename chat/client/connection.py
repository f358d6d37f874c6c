"""The asyncio client: one socket to /ws/ for many rooms, reconnecting and recovering by itself."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import websockets
from websockets.typing import Origin

from chatcluster.client import frames, policy, urls
from chatcluster.client.dispatch import Dispatch, OnDrop
from chatcluster.client.events import AuthenticationError, ChatClientError, ClientClosedError, Event, State, StateChange
from chatcluster.client.outbox import Pending
from chatcluster.client.stream import EventStream

logger = logging.getLogger("chatcluster.client")

# A token, or a callable (maybe async) called for a fresh one before each connect.
TokenSource = str | Callable[[], str | Awaitable[str]]
# A history page holds up to 100 bodies of 4000 characters: far over websockets' 1 MiB default.
MAX_FRAME = 16 * 2**20
# Events kept for a slow `async for` before the client stops reading its socket.
MAX_EVENTS = 10_000
# A refusal at the handshake means what the close code after it would (docs/protocol.md).
HTTP_REFUSALS = {401: 4401, 403: 4403}


class Client(Dispatch):
    """A chat client: `async with Client(url, token) as client:`, then calls and `async for event in client`.

    `url` is the server's `ws://host:port/ws/`. `origin` is sent as the Origin header: by
    default the server's own http(s) origin; False sends none (allowed with a token).
    Read the events: past `max_events` unread ones the client stops reading its socket
    (and so waits for acks too) until you do.
    """

    def __init__(
        self,
        url: str,
        token: TokenSource | None = None,
        *,
        origin: str | bool = True,
        open_timeout: float = 10.0,
        max_events: int = MAX_EVENTS,
    ) -> None:
        super().__init__()
        self.url = urls.check(url)
        self._token = token
        self._origin = urls.origin_of(url) if origin is True else (origin or None)
        self._open_timeout = open_timeout
        self._events = EventStream(max_events)
        self.state: State = "connecting"
        self.node: str | None = None  # the node that answered the handshake (X-Chat-Node)
        self._attempt = 0
        self._ready = asyncio.Event()
        self._fatal: AuthenticationError | None = None
        self._closing = False
        self._run_task: asyncio.Task[None] | None = None

    # --- lifetime -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect, and return once the server has accepted the credentials.

        Passing failures are retried with backoff (bound the wait with `asyncio.timeout`);
        4401 or 4403 raise `AuthenticationError`.
        """
        self._check_usable(started=False)
        if self._run_task is None:
            self._run_task = asyncio.create_task(self._run(), name=f"chat client {urls.without_token(self.url)}")
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait({ready, self._run_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        self._check_usable()
        if self._run_task.done() and not self._run_task.cancelled() and self._run_task.exception():
            raise ChatClientError("the client's connection task failed") from self._run_task.exception()
        if not self._ready.is_set():
            raise ClientClosedError("the client stopped before it connected")

    async def close(self) -> None:
        """Close the socket (a clean 1000: presence leaves at once) and end every task and pending call."""
        if self._closing:
            return
        self._closing = True
        if self.state != "offline":
            self._set_state("offline")
        self._events.end()
        if self._ws is not None:
            await self._ws.close()
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()
            await asyncio.wait({self._run_task})
        await self._cancel_timers()
        self._fail_all(ClientClosedError("the client was closed"))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        """Messages in order and once each, presence, typing, unasked errors, state changes, resets."""
        return await self._events.get()

    # --- calls ----------------------------------------------------------------------

    async def subscribe(self, room: str, *, since: int | None = None) -> frames.Subscribed:
        """Follow `room` (also across reconnects); `since` asks for a replay of every message after it."""
        self._check_usable()
        return await self._subscribe(room, since)

    async def unsubscribe(self, room: str) -> None:
        self._check_usable()
        await self._unsubscribe(room)

    async def publish(self, room: str, body: str, *, key: str | None = None) -> int:
        """Store a message and return its seq. It waits through reconnects and is resent with the same
        `key` (one is made when none is given), so it is stored once."""
        self._check_usable()
        publish = Pending(self._ref(), room, body, key or secrets.token_hex(16), self._future())
        self._outbox.pending[publish.ref] = publish
        try:
            await self._pump()
            return await publish.future
        finally:
            self._outbox.pending.pop(publish.ref, None)

    async def history(self, room: str, before: int | None = None, limit: int = 50) -> list[frames.HistoryMessage]:
        """Up to `limit` messages of `room` before seq `before` (the newest without it), oldest first."""
        self._check_usable()
        answer = await self._request(
            lambda ref: frames.encode_history(room, before=before, limit=limit, ref=ref), on_drop="again"
        )
        if not isinstance(answer, frames.History):
            raise ChatClientError(f"unexpected answer to history of {room!r}: {answer!r}")
        return answer.messages

    async def edit(self, room: str, target: int, body: str) -> int:
        """Change the body of your message `target` (its seq) and return the edit's own seq.

        Sent once connected. It is not sent again after a drop, since a repeat would be stored
        as a second edit: a drop before the answer raises AnswerLostError, and the room's
        `Edit` events tell whether it was stored. A refusal raises ServerError (`forbidden`
        for another's message, `not_found`, `rate_limited` with `retry_after`, ...).
        """
        self._check_usable()
        return await self._change(lambda ref: frames.encode_edit(room, target, body, ref=ref), "fail")

    async def delete(self, room: str, target: int) -> int:
        """Delete message `target` (yours, or any as the room's owner, a moderator or staff); return the seq
        of the delete. It waits through reconnects: a repeat is answered with the first delete's seq.
        A refusal raises ServerError."""
        self._check_usable()
        return await self._change(lambda ref: frames.encode_delete(room, target, ref=ref), "again")

    async def react(self, room: str, target: int, emoji: str, *, on: bool = True) -> int:
        """Give (`on`) or take back the reaction `emoji` (one emoji grapheme) to message `target`; return
        the seq of the change. It waits through reconnects: asking for the state a reaction already has
        stores nothing and is answered with the seq that set it. A refusal raises ServerError."""
        self._check_usable()
        return await self._change(lambda ref: frames.encode_react(room, target, emoji, on=on, ref=ref), "again")

    async def typing(self, room: str) -> None:
        """Tell the room's other users that you type (dropped while not connected)."""
        self._check_usable()
        state = self._rooms.get(room)
        if state is None:
            raise ValueError(f"typing in {room!r} needs a subscription to it")
        if state.subscribed:
            await self._send(frames.encode_typing(room))

    async def ping(self) -> float:
        """Seconds until the server answered a ping."""
        self._check_usable()
        started = asyncio.get_running_loop().time()
        await self._request(lambda ref: frames.encode_ping(ref=ref), on_drop="again")
        return asyncio.get_running_loop().time() - started

    def last_seq(self, room: str) -> int | None:
        """The seq up to which every event of `room` (messages and their changes) was handed out."""
        state = self._rooms.get(room)
        return state.last if state else None

    def presence(self, room: str) -> list[str]:
        state = self._rooms.get(room)
        return sorted(state.presence) if state else []

    @property
    def repeats(self) -> int:
        """Seq-stream frames dropped because their seq was already handed out (replays overlap live frames)."""
        return self._repeats

    async def _change(self, build: Callable[[str], bytes], on_drop: OnDrop) -> int:
        answer = await self._request(build, on_drop=on_drop)
        if not isinstance(answer, frames.Ack):
            raise ChatClientError(f"unexpected answer to a change: {answer!r}")
        return answer.seq

    # --- the connection loop --------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            code, error = await self._session()
            if self._closing:
                return
            reason = policy.fatal_reason(code)
            if code is not None and reason is not None:
                self._stop(AuthenticationError(code, reason), code)
                return
            delay, self._attempt = policy.reconnect_delay(code, self._attempt)
            self._set_state("reconnecting", code=code, retry_in=delay, error=error)
            logger.info(
                "chat client: socket to %s ended (code %s, %s); reconnecting in %.2f s",
                urls.without_token(self.url),
                code,
                error or "closed",
                delay,
            )
            await asyncio.sleep(delay)

    async def _session(self) -> tuple[int | None, str | None]:
        """One socket, from connect to its end: the close code (None: no socket) and what went wrong."""
        try:
            url = urls.with_token(self.url, await self._fresh_token())
        except Exception as exc:
            logger.exception("chat client: the token callable failed; retrying with backoff")
            return None, f"token: {exc!r}"
        try:
            ws = await websockets.connect(
                url,
                origin=Origin(self._origin) if self._origin else None,
                open_timeout=self._open_timeout,
                max_size=MAX_FRAME,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            return HTTP_REFUSALS.get(status), f"handshake answered HTTP {status}"
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            return None, repr(exc)
        self._ws = ws
        self.node = ws.response.headers.get("X-Chat-Node") if ws.response else None
        try:
            await self._opened()
            while True:
                await self._on_text(await ws.recv())
        except websockets.ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else policy.CLOSE_ABNORMAL), None
        except Exception as exc:
            logger.exception("chat client: unexpected error on the socket to %s", urls.without_token(self.url))
            await ws.close()
            return None, repr(exc)
        finally:
            self._dropped()

    async def _fresh_token(self) -> str | None:
        if self._token is None or isinstance(self._token, str):
            return self._token
        token = self._token()
        return token if isinstance(token, str) else await token

    # --- hooks and helpers for Dispatch ---------------------------------------------

    def _authenticated(self) -> None:
        self._ready.set()

    def _update_state(self) -> None:
        if self._ws is None or not self._authed or self._closing:
            return
        state: State = "catching-up" if any(r.catching for r in self._rooms.values()) else "online"
        if state == "online":
            self._attempt = 0  # only once fully caught up: a socket that drops at once backs off
        if state != self.state:
            self._set_state(state)

    def _set_state(
        self, state: State, *, code: int | None = None, retry_in: float | None = None, error: str | None = None
    ) -> None:
        self.state = state
        self._events.put_nowait(StateChange(state=state, code=code, retry_in=retry_in, error=error))

    async def _emit(self, event: Event) -> None:
        await self._events.put(event)

    def _stop(self, error: AuthenticationError, code: int) -> None:
        logger.error("chat client: %s", error)
        self._fatal = error
        self._set_state("offline", code=code, error=str(error))
        self._events.end(error)
        self._fail_all(error)

    def _check_usable(self, *, started: bool = True) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closing:
            raise ClientClosedError("the client was closed")
        if started and self._run_task is None:
            raise ClientClosedError("the client is not connected: call connect(), or use `async with Client(...)`")
