"""The `/ws/` consumer: authenticate, parse a frame into a command, call one service, reply."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from chatcluster import broadcast, lifecycle, metrics, protocol
from chatcluster.budget import FrameBudget
from chatcluster.conf import chat_settings
from chatcluster.errors import BACKEND_DOWN, ChatError, unavailable
from chatcluster.feeds import Subscription
from chatcluster.flow import FLOW_EXTENSION, OutFrame
from chatcluster.hub import Hub, get_hub
from chatcluster.lifecycle import LocalSocket
from chatcluster.publisher import get_publisher
from chatcluster.seams import channels
from chatcluster.sendqueue import SendQueue
from chatcluster.services.access import Grant, access_auth_hash
from chatcluster.services.changes import change_of
from chatcluster.services.connections import connection_close, connection_open
from chatcluster.services.history import message_history
from chatcluster.services.liveness import INSTANCE
from chatcluster.services.messages import PublishRequest
from chatcluster.services.typing import typing_allowed, typing_clear

logger = logging.getLogger(__name__)

_conn_ids = itertools.count(1)

# Each command's frame type, for its budget and its metric.
KIND_OF: dict[type, str] = {
    protocol.Publish: "publish",
    protocol.Subscribe: "subscribe",
    protocol.Unsubscribe: "unsubscribe",
    protocol.Typing: "typing",
    protocol.History: "history",
    protocol.Ping: "ping",
    protocol.Edit: "edit",
    protocol.Delete: "delete",
    protocol.React: "react",
}


# The detail of an eviction's `forbidden`, by its reason: the page words its notice by it.
EVICTED = {
    "removed": "you were removed from {room}",
    "kicked": "you were removed from {room} by a moderator",
    "banned": "you are banned from {room}",
}


class ChatConsumer(AsyncWebsocketConsumer):
    # No channel per socket: the node's hub subscribes once per room and fans out.
    channel_layer_alias = "__per_node_hub__"

    hub: Hub
    user_name: str

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Coroutine[Any, Any, None]:
        # channels' own run, without the task and future per idle socket of its
        # await_many_dispatch (chat/seams/channels.py). Not a coroutine itself, so that no
        # frame of ours stays on every idle socket's task.
        return channels.run_direct(self, scope, receive, send)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # No thread hop per frame: the services' database_sync_to_async calls recycle
        # database connections themselves (chat/seams/channels.py).
        try:
            await channels.dispatch_direct(self, message)
        except (asyncio.CancelledError, StopConsumer):
            raise
        except Exception:
            # A bug got past the handlers. The server closes the socket with 1011 and will
            # never deliver its websocket.disconnect, so leave now: otherwise the user
            # stays in presence and holds a place in the cluster's socket count.
            logger.exception("socket %s crashed on %s", getattr(self, "conn_id", "?"), message["type"])
            await self.disconnect(lifecycle.CLOSE_INTERNAL)
            raise

    async def connect(self) -> None:
        refusal = self.scope.get("auth_refusal")
        if refusal is None and lifecycle.draining():
            refusal = lifecycle.CLOSE_DRAINING
        await self.accept()
        if refusal is not None:
            outage = refusal == lifecycle.CLOSE_TRY_AGAIN
            metrics.CONNECTS.labels("unavailable" if outage else "refused").inc()
            await self.close(code=refusal, reason=lifecycle.REASON_BACKEND_DOWN if outage else None)
            return
        self.user = self.scope["user"]
        self.user_name = self.user.get_username()
        # Unique per process: a restarted node is a new instance, its old entries swept.
        self.conn_id = f"{INSTANCE}/{next(_conn_ids)}"
        self.subs: dict[str, Subscription] = {}
        self.queue = SendQueue(
            flow=self.scope.get("extensions", {}).get(FLOW_EXTENSION),
            send_text=self._send_text,
            close=self.close,
            conn=self.conn_id,
            user=self.user_name,
        )
        self.strikes = 0
        self.budget = FrameBudget()
        # Rooms this socket sent typing frames to since its last publish there (None: none,
        # so an idle socket carries no empty set).
        self.typed_in: set[str] | None = None
        try:
            self.hub = await get_hub()
            admitted = await connection_open(user_id=self.user.pk, conn=self.conn_id)
        except BACKEND_DOWN:
            metrics.CONNECTS.labels("unavailable").inc()
            await self.close(code=lifecycle.CLOSE_TRY_AGAIN, reason=lifecycle.REASON_BACKEND_DOWN)
            if hasattr(self, "hub"):
                del self.hub
            return
        if not admitted:
            metrics.CONNECTS.labels("too_many").inc()
            await self.close(code=lifecycle.CLOSE_TOO_MANY)
            del self.hub
            return
        grant = Grant(
            conn=self.conn_id,
            user_id=self.user.pk,
            auth_hash=access_auth_hash(user=self.user),
            session_key=self.scope.get("auth_session"),
        )
        self.hub.add_socket(LocalSocket(grant=grant, close=self.close_with, evict=self.evict, send=self.queue.send))
        metrics.CONNECTS.labels("accepted").inc()
        metrics.CONNECTIONS.inc()

    async def evict(self, room: str, reason: str = "removed") -> None:
        """The user may no longer see `room` (removed, kicked or banned): end the subscription."""
        if room not in self.subs:
            return
        await self.hub.unsubscribe(subs=self.subs, room=room)
        self.reply_error(ChatError("forbidden", EVICTED.get(reason, EVICTED["removed"]).format(room=room)), room=room)

    async def close_with(self, code: int) -> None:
        self.queue.stop()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "hub") or getattr(self, "gone", False):
            return
        self.gone = True
        metrics.CONNECTIONS.dec()
        self.hub.remove_socket(self.conn_id)
        try:
            await connection_close(user_id=self.user.pk, conn=self.conn_id)
        except BACKEND_DOWN:
            pass  # the entry expires with PRESENCE_TTL
        # A clean close leaves at once; a dropped socket gets a grace period so a quick
        # reconnect (a node restart, a network blip) does not flicker left-then-joined.
        grace = 0 if code in lifecycle.CLEAN_CLOSES else chat_settings.PRESENCE_GRACE
        for room in list(self.subs):
            await self.hub.unsubscribe(subs=self.subs, room=room, grace=grace)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "hub") or self.queue.closing:
            return  # refused or closing socket
        if self.queue.flow is not None:
            self.queue.flow.inbox_taken()
        ref: str | None = None
        try:
            try:
                if text_data is None:
                    raise ChatError("bad_request", "frames must be JSON text, not binary")
                command = protocol.parse_frame(text_data)
            except ChatError:
                if not self.budget.take("invalid"):
                    await self.flooded("invalid")
                    return
                raise
            ref = command.ref
            kind = KIND_OF[type(command)]
            metrics.FRAMES_IN.labels(kind).inc()
            if not self.budget.take(kind):
                await self.flooded(kind)
                return
            await self.handle(command)
        except ChatError as exc:
            self.reply_error(exc, ref if ref is not None or text_data is None else protocol.ref_of(text_data))
            if exc.code == "rate_limited":
                self.strikes += 1
                if self.strikes >= chat_settings.CHAT_FLOOD_STRIKES:
                    await self.close(code=lifecycle.CLOSE_POLICY)
        except asyncio.CancelledError:
            raise
        except BACKEND_DOWN as exc:
            logger.warning("frame from %s (%s) found a backend down: %r", self.user_name, self.conn_id, exc)
            self.reply_error(unavailable(exc), ref)
        except Exception:
            logger.exception("frame from %s (%s) failed", self.user_name, self.conn_id)
            self.reply_error(ChatError("internal", "the server failed on this frame"), ref)

    async def handle(self, command: protocol.AnyCommand) -> None:
        match command:
            case protocol.Ping():
                self.reply({"type": "pong"}, command.ref)
            case protocol.Subscribe():
                # The hub answers through the queue: the replay, `subscribed`, then live frames.
                await self.hub.subscribe(
                    subs=self.subs,
                    room=command.room,
                    since=command.since,
                    ref=command.ref,
                    user=self.user,
                    conn=self.conn_id,
                    send=self.queue.send,
                )
            case protocol.Unsubscribe():
                await self.hub.unsubscribe(subs=self.subs, room=command.room)
                self.reply({"type": "unsubscribed", "room": command.room}, command.ref)
            case protocol.Publish():
                # Rate limit, storage and broadcast happen in the node's batches. Stored means
                # acked: the database is the record, and a peer that misses the broadcast reads
                # the message back when it notices the gap.
                posted = await get_publisher().publish(
                    PublishRequest(slug=command.room, author=self.user, body=command.body, key=command.key)
                )
                self.strikes = 0
                self.reply({"type": "ack", "room": posted.room, "seq": posted.seq}, command.ref)
                if self.typed_in and command.room in self.typed_in:
                    # Only for a socket that typed here: a publisher that never types
                    # (a bot, the benchmark) pays no Redis call.
                    self.typed_in.discard(command.room)
                    await typing_clear(room=command.room, user=self.user_name)
            case protocol.Edit() | protocol.Delete() | protocol.React():
                posted = await get_publisher().change(author=self.user, apply=partial(change_of, command, self.user))
                self.reply({"type": "ack", "room": posted.room, "seq": posted.seq}, command.ref)
            case protocol.History():
                if self.queue.backed_up():
                    # Its earlier answers still wait to be read: another page would only
                    # pile up in the node's memory.
                    raise ChatError("rate_limited", "read the history already sent first", retry_after=1.0)
                messages = await database_sync_to_async(message_history)(
                    slug=command.room, user=self.user, before=command.before, limit=command.limit
                )
                self.reply({"type": "history", "room": command.room, "messages": messages}, command.ref)
            case protocol.Typing():
                if command.room not in self.subs:
                    raise ChatError("bad_request", f"subscribe to {command.room} before typing in it")
                if self.typed_in is None:
                    self.typed_in = set()
                self.typed_in.add(command.room)
                if await typing_allowed(room=command.room, user=self.user_name):
                    await broadcast.publish_typing(command.room, self.user_name)

    async def flooded(self, kind: str) -> None:
        logger.info("closing %s (%s): over its %s frame budget", self.conn_id, self.user_name, kind)
        metrics.ERRORS.labels("flooding").inc()
        self.queue.stop()
        await self.close(code=lifecycle.CLOSE_POLICY, reason=f"too many {kind} frames")

    # --- outgoing ----------------------------------------------------------------

    def reply(self, frame: dict[str, Any], ref: str | None) -> None:
        if ref is not None:
            frame["ref"] = ref
        self.queue.send(OutFrame(protocol.encode(frame)))

    def reply_error(self, exc: ChatError, ref: str | None = None, *, room: str | None = None) -> None:
        metrics.ERRORS.labels(exc.code).inc()
        self.queue.send(protocol.error_frame(exc, ref, room=room))

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)
