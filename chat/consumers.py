"""The `/ws/` consumer: authenticate, parse a frame into a command, call one service, reply."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import hub, metrics, protocol
from chat.errors import BACKEND_DOWN, ChatError, unavailable
from chat.flow import FLOW_EXTENSION, FlowControl, OutFrame
from chat.hub import Hub, LocalSocket, Subscription, get_hub
from chat.publisher import get_publisher
from chat.services.access import Grant, access_auth_hash
from chat.services.connections import connection_close, connection_open
from chat.services.liveness import INSTANCE
from chat.services.messages import PublishRequest, message_frames_between, message_history
from chat.services.presence import presence_join, presence_leave, presence_list
from chat.services.subscriptions import subscription_snapshot
from chat.services.typing import typing_allowed

logger = logging.getLogger(__name__)

CLOSE_POLICY = 1008
# The client fell more than SEND_QUEUE_MAX frames behind; it recovers with `since`.
CLOSE_TOO_SLOW = 1013
# The user already holds CHAT_MAX_SOCKETS_PER_USER sockets across the cluster.
CLOSE_TOO_MANY = 4429
CLOSE_INTERNAL = 1011
# Close codes of a client that meant to go: 1000 normal, 1001 going away (tab closed).
CLEAN_CLOSES = {1000, 1001}
_conn_ids = itertools.count(1)


class ChatConsumer(AsyncWebsocketConsumer):
    # No channel per socket: the node's hub subscribes once per room and fans out.
    channel_layer_alias = "__per_node_hub__"

    hub: Hub
    user_name: str

    async def dispatch(self, message: dict[str, Any]) -> None:
        # The base class hops to a thread per frame to recycle database connections;
        # the services' own database_sync_to_async calls already do that.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is not None:
            await handler(message)

    async def connect(self) -> None:
        refusal = self.scope.get("auth_refusal")
        if refusal is None and hub.draining():
            refusal = hub.CLOSE_DRAINING
        await self.accept()
        if refusal is not None:
            metrics.CONNECTS.labels("refused").inc()
            await self.close(code=refusal)
            return
        self.user = self.scope["user"]
        self.user_name = self.user.get_username()
        self.conn_id = f"{INSTANCE}/{next(_conn_ids)}"
        self.subs: dict[str, Subscription] = {}
        self.outbox: deque[OutFrame] = deque()
        self.flow: FlowControl | None = self.scope.get("extensions", {}).get(FLOW_EXTENSION)
        self.flushing: asyncio.Task[None] | None = None
        self.closing = False
        self.strikes = 0
        try:
            self.hub = await get_hub()
            admitted = await connection_open(user_id=self.user.pk, conn=self.conn_id)
        except BACKEND_DOWN:
            metrics.CONNECTS.labels("unavailable").inc()
            await self.close(code=CLOSE_INTERNAL)
            del self.hub
            return
        if not admitted:
            metrics.CONNECTS.labels("too_many").inc()
            await self.close(code=CLOSE_TOO_MANY)
            del self.hub
            return
        grant = Grant(
            conn=self.conn_id,
            user_id=self.user.pk,
            auth_hash=access_auth_hash(user=self.user),
            session_key=self.scope.get("auth_session"),
        )
        self.hub.add_socket(LocalSocket(grant=grant, close=self.close_with, evict=self.evict))
        metrics.CONNECTS.labels("accepted").inc()
        metrics.CONNECTIONS.inc()

    async def evict(self, room: str) -> None:
        """The user may no longer see `room` (removed from it): end the subscription."""
        sub = self.subs.get(room)
        if sub is None:
            return
        await self._leave(sub)
        self.reply_error(ChatError("forbidden", f"you are no longer a member of {room}"), room=room)

    async def close_with(self, code: int) -> None:
        self.closing = True
        self.outbox.clear()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "hub"):
            return
        metrics.CONNECTIONS.dec()
        self.hub.remove_socket(self.conn_id)
        try:
            await connection_close(user_id=self.user.pk, conn=self.conn_id)
        except BACKEND_DOWN:
            pass  # the entry expires with PRESENCE_TTL
        # A clean close leaves at once; a dropped socket gets a grace period so a quick
        # reconnect (a node restart, a network blip) does not flicker left-then-joined.
        grace = 0 if code in CLEAN_CLOSES else settings.PRESENCE_GRACE
        for sub in list(self.subs.values()):
            await self._leave(sub, grace=grace)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not hasattr(self, "hub") or self.closing:
            return  # refused or closing socket
        if text_data is None:
            self.reply_error(ChatError("bad_request", "frames must be JSON text, not binary"))
            return
        ref: str | None = None
        try:
            command = protocol.parse_frame(text_data)
            ref = command.ref
            metrics.FRAMES_IN.labels(type(command).__name__.lower()).inc()
            await self.handle(command)
        except ChatError as exc:
            self.reply_error(exc, ref if ref is not None else protocol.ref_of(text_data))
            if exc.code == "rate_limited":
                self.strikes += 1
                if self.strikes >= settings.CHAT_FLOOD_STRIKES:
                    await self.close(code=CLOSE_POLICY)
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
                await self.subscribe(command)
            case protocol.Unsubscribe():
                sub = self.subs.get(command.room)
                if sub is not None:
                    await self._leave(sub)
                self.reply({"type": "unsubscribed", "room": command.room}, command.ref)
            case protocol.Publish():
                await self.publish(command)
            case protocol.History():
                messages = await database_sync_to_async(message_history)(
                    slug=command.room, user=self.user, before=command.before, limit=command.limit
                )
                self.reply({"type": "history", "room": command.room, "messages": messages}, command.ref)
            case protocol.Typing():
                if command.room not in self.subs:
                    raise ChatError("bad_request", f"subscribe to {command.room} before typing in it")
                if await typing_allowed(room=command.room, user=self.user_name):
                    await hub.publish_typing(command.room, self.user_name)

    async def subscribe(self, command: protocol.Subscribe) -> None:
        sub = self.subs.get(command.room)
        fresh = sub is None
        if fresh and len(self.subs) >= settings.CHAT_MAX_SUBSCRIPTIONS:
            raise ChatError("too_large", f"a socket may follow at most {settings.CHAT_MAX_SUBSCRIPTIONS} rooms")
        if sub is None:
            sub = Subscription(room=command.room, user=self.user_name, conn=self.conn_id, send=self.enqueue)
            # Join the room's group before reading its state, so nothing committed
            # after the read can slip past this socket.
            await self.hub.attach(sub)
        else:
            sub.pending = []
        try:
            snapshot = await database_sync_to_async(subscription_snapshot)(
                slug=command.room, user=self.user, since=command.since
            )
            if fresh:
                # One round trip: the entry is written and the room's list read together.
                joined, present = await presence_join(room=command.room, user=self.user_name, conn=self.conn_id)
                sub.present = True
                if joined:
                    await hub.publish_presence(command.room, [self.user_name], [], skip_user=self.user_name)
            else:
                present = await presence_list(room=command.room)
        except BaseException:
            if fresh:
                await self.hub.detach(sub)
            else:
                sub.go_live(sub.upto)
            raise
        if fresh:
            self.subs[command.room] = sub
            metrics.SUBSCRIPTIONS.inc()
        replay = snapshot.replay
        # Another socket's subscribe may have moved the node's feed past this read;
        # the feed does not deliver those messages again, so read them here.
        head = self.hub.seed(command.room, snapshot.last_seq)
        if head > snapshot.last_seq and snapshot.recovered:
            extra = await database_sync_to_async(message_frames_between)(
                slug=command.room, after=snapshot.last_seq, before=head + 1
            )
            replay = replay + [text for _, text in extra]
        last_seq = max(head, snapshot.last_seq)
        for frame in replay:
            self.enqueue(frame)
        answer: dict[str, Any] = {
            "type": "subscribed",
            "room": command.room,
            "seq": last_seq,
            "presence": present,
        }
        if snapshot.recovered is not None:
            answer["recovered"] = snapshot.recovered
        self.reply(answer, command.ref)
        # Held-back frames past what the client now holds follow the answer.
        sub.go_live(last_seq)

    async def publish(self, command: protocol.Publish) -> None:
        # Rate limit, storage and broadcast happen in the node's batches. Stored means
        # acked: the database is the record, and a peer that misses the broadcast reads
        # the message back when it notices the gap.
        posted = await get_publisher().publish(
            PublishRequest(slug=command.room, author=self.user, body=command.body, key=command.key)
        )
        self.strikes = 0
        self.reply({"type": "ack", "room": posted.room, "seq": posted.seq}, command.ref)

    async def _leave(self, sub: Subscription, grace: float = 0) -> None:
        self.subs.pop(sub.room, None)
        metrics.SUBSCRIPTIONS.dec()
        await self.hub.detach(sub)
        if grace > 0:
            self.hub.leave_later(grace, lambda: self._leave_presence(sub))
        else:
            await self._leave_presence(sub)

    @staticmethod
    async def _leave_presence(sub: Subscription) -> None:
        try:
            if await presence_leave(room=sub.room, user=sub.user, conn=sub.conn):
                await hub.publish_presence(sub.room, [], [sub.user])
        except asyncio.CancelledError:
            raise
        except Exception:
            # The entry expires by itself within PRESENCE_TTL; the sweep announces it.
            logger.warning("presence leave of %s in %s failed; the sweep will catch it", sub.user, sub.room)

    # --- outgoing ----------------------------------------------------------------

    def reply(self, frame: dict[str, Any], ref: str | None) -> None:
        if ref is not None:
            frame["ref"] = ref
        self.enqueue(protocol.encode(frame))

    def reply_error(self, exc: ChatError, ref: str | None = None, *, room: str | None = None) -> None:
        metrics.ERRORS.labels(exc.code).inc()
        self.enqueue(protocol.error_frame(exc, ref, room=room))

    def enqueue(self, frame: OutFrame | str) -> None:
        """Send a frame, or queue it behind earlier ones; frames leave in the order given."""
        if self.closing:
            return
        if isinstance(frame, str):
            frame = OutFrame(frame)
        flow = self.flow
        if flow is not None and self.flushing is None and flow.writable.is_set():
            # The common case: nothing waiting, socket writable. Write now, no task.
            flow.write(frame)
            return
        if len(self.outbox) >= settings.SEND_QUEUE_MAX:
            # The client stopped reading. Holding more would grow the node without bound;
            # it reconnects and recovers what it missed with `since`.
            logger.info("closing %s (%s): %d frames waiting", self.conn_id, self.user_name, len(self.outbox))
            metrics.SLOW_CLOSES.inc()
            metrics.SEND_QUEUE_DROPS.inc(len(self.outbox) + 1)
            self.closing = True
            self.outbox.clear()
            self._closer = asyncio.create_task(self.close(code=CLOSE_TOO_SLOW))
            return
        self.outbox.append(frame)
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        flow = self.flow
        try:
            while self.outbox:
                if flow is None:
                    await self.send(text_data=self.outbox.popleft().text)
                elif not flow.writable.is_set():
                    await flow.writable.wait()
                else:
                    flow.write(self.outbox.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("socket %s went away with %d frames unsent", self.conn_id, len(self.outbox))
            self.outbox.clear()
        finally:
            self.flushing = None
