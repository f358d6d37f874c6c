"""The node's hub: one channel-layer channel per node, one group membership per room.

Every node joins a room's group once, however many local sockets watch the room, and
hands each pre-encoded frame to the room's feed (chat/feeds.py), which puts messages in
`seq` order and offers them to the subscriptions. This module only wires the parts:

- chat/broadcast.py: group sends and event types;
- chat/presence_diffs.py: coalesced presence diffs and their fan-out;
- chat/feeds.py: a room's ordering, gap repair and delivery;
- chat/watchdog.py: the epoch, the probe, the restore and the tail checks;
- chat/upkeep.py: presence heartbeat and sweep, the node registry, the access review;
- chat/lifecycle.py: the local sockets, close codes and the draining flag.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.contrib.auth.models import AbstractBaseUser

from chatcluster import metrics, protocol, upkeep
from chatcluster.broadcast import (
    CONTROL_GROUP,
    EVENT_ADDED,
    EVENT_EVICT,
    EVENT_MESSAGE,
    EVENT_PRESENCE,
    EVENT_PROBE,
    EVENT_REVOKE,
    EVENT_TYPING,
    layer,
    room_group,
)
from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.feeds import RoomFeed, Send, Subscription
from chatcluster.flow import OutFrame
from chatcluster.lifecycle import LocalSocket, LocalSockets, local_sockets
from chatcluster.presence_diffs import fan_out_presence, presence_enter, presence_exit
from chatcluster.services.messages import message_frames_between
from chatcluster.services.subscriptions import subscription_snapshot
from chatcluster.watchdog import Watchdog

logger = logging.getLogger(__name__)


async def _read_frames(slug: str, after: int, before: int) -> list[tuple[int, str]]:
    frames: list[tuple[int, str]] = await database_sync_to_async(message_frames_between)(
        slug=slug, after=after, before=before
    )
    return frames


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel = ""
        self.feeds: dict[str, RoomFeed] = {}
        self.unrestored_shards: set[int] = set()
        self.sockets: LocalSockets = local_sockets()
        self.started_at = time.time()
        self.watchdog = Watchdog(self)
        self._receiver: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.grace_leaves = upkeep.GraceLeaves()

    async def start(self) -> None:
        self.channel = await self.layer.new_channel("node.")
        self._receiver = asyncio.create_task(self._receive_loop())
        await self.layer.group_add(CONTROL_GROUP, self.channel)
        await self.watchdog.start()
        # The lease first: every entry a socket writes from now on is held by it.
        await upkeep.renew(self)
        await upkeep.register(self)
        metrics.PRESENCE_ENTRIES.set_function(lambda: sum(len(feed.subs) for feed in self.feeds.values()))
        for loop in (
            upkeep.heartbeat_loop(self),
            upkeep.sweep_loop(),
            self.watchdog.loop(),
            upkeep.access_loop(self),
        ):
            self._tasks.append(asyncio.create_task(loop))

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._receiver] if self._receiver else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.grace_leaves.cancel()
        # Everything this node held goes now, not when its lease would lapse.
        await upkeep.release()
        await upkeep.forget()

    async def renew_channel(self) -> None:
        """Flush the layer, take a new channel and receive on it (the watchdog's restore)."""
        # Flush first: it forgets the old channel and closes the shards' connections. A
        # receiver cancelled before that unsubscribes its channel on the way out, on a
        # connection that Redis's restart left dead: the reconnect under the shard's lock
        # can wait for a Redis that accepts but does not answer yet, and the restore with it.
        await self.layer.flush()
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
        self.channel = await self.layer.new_channel("node.")
        self._receiver = asyncio.create_task(self._receive_loop())

    def add_socket(self, socket: LocalSocket) -> None:
        self.sockets.add(socket)

    def remove_socket(self, conn: str) -> None:
        self.sockets.remove(conn)

    # --- subscriptions -------------------------------------------------------

    async def subscribe(
        self,
        *,
        subs: dict[str, Subscription],
        room: str,
        since: int | None,
        ref: str | None,
        user: AbstractBaseUser,
        conn: str,
        send: Send,
    ) -> None:
        """Subscribe a socket to `room` (again, if already in `subs`) and answer it through `send`.

        The socket gets the replay, then `subscribed`, then the room's frames past it. A new
        subscription is added to `subs` (the socket's) once it holds.
        """
        sub = subs.get(room)
        fresh = sub is None
        if fresh and len(subs) >= chat_settings.CHAT_MAX_SUBSCRIPTIONS:
            raise ChatError("too_large", f"a socket may follow at most {chat_settings.CHAT_MAX_SUBSCRIPTIONS} rooms")
        if sub is None:
            sub = Subscription(room=room, user=user.get_username(), conn=conn, send=send)
            # Join the room's group before reading its state, so nothing committed
            # after the read can slip past this socket.
            await self.attach(sub)
        else:
            sub.pending = []
        try:
            snapshot = await database_sync_to_async(subscription_snapshot)(slug=room, user=user, since=since)
            present = await presence_enter(room=room, user=sub.user, conn=conn, fresh=fresh)
            sub.present = True
        except BaseException:
            if fresh:
                await self.detach(sub)
            else:
                sub.go_live(sub.upto)
            raise
        if fresh:
            subs[room] = sub
            metrics.SUBSCRIPTIONS.inc()
        replay = snapshot.replay
        # Another socket's subscribe may have moved the node's feed past this read;
        # the feed does not deliver those messages again, so read them here.
        head = self.seed(room, snapshot.last_seq)
        if head > snapshot.last_seq and snapshot.recovered:
            extra = await _read_frames(room, snapshot.last_seq, head + 1)
            replay = replay + [text for _, text in extra]
        last_seq = max(head, snapshot.last_seq)
        for text in replay:
            send(OutFrame(text))
        answer: dict[str, Any] = {"type": "subscribed", "room": room, "seq": last_seq, "presence": present}
        if snapshot.recovered is not None:
            answer["recovered"] = snapshot.recovered
        if ref is not None:
            answer["ref"] = ref
        send(OutFrame(protocol.encode(answer)))
        # Held-back frames past what the client now holds follow the answer.
        sub.go_live(last_seq)

    async def unsubscribe(self, *, subs: dict[str, Subscription], room: str, grace: float = 0) -> None:
        """End the socket's subscription to `room`, if it has one; presence leaves after `grace` s."""
        sub = subs.pop(room, None)
        if sub is None:
            return
        metrics.SUBSCRIPTIONS.dec()
        await self.detach(sub)
        if not sub.present:
            return
        if grace > 0:
            # A dropped socket's presence outlives it briefly, so a quick reconnect does
            # not flicker left-then-joined. If this node dies first, its lease lapses.
            self.grace_leaves.later(grace, lambda: _leave_presence(sub))
        else:
            await _leave_presence(sub)

    async def attach(self, sub: Subscription) -> None:
        """Start routing the room's frames to `sub` (held back until it goes live)."""
        feed = self.feeds.get(sub.room)
        if feed is None:
            feed = self.feeds[sub.room] = RoomFeed(sub.room, read=_read_frames)
        feed.subs.add(sub)
        if feed.joined is None:
            feed.joined = asyncio.get_running_loop().create_future()
            try:
                await self.layer.group_add(room_group(sub.room), self.channel)
            except BaseException as exc:
                feed.joined.set_exception(exc)
                feed.joined.exception()  # mark retrieved; the caller re-raises below
                self._drop(feed)
                raise
            feed.joined.set_result(None)
            metrics.ROOMS.set(len(self.feeds))
        await asyncio.shield(feed.joined)

    def seed(self, room: str, last_seq: int) -> int:
        """Tell a fresh feed where the room stands (see RoomFeed.seed); returns its head."""
        feed = self.feeds.get(room)
        return last_seq if feed is None else feed.seed(last_seq)

    async def detach(self, sub: Subscription) -> None:
        feed = self.feeds.get(sub.room)
        if feed is None or sub not in feed.subs:
            return
        feed.subs.discard(sub)
        if not feed.subs:
            self._drop(feed)
            await self.layer.group_discard(room_group(sub.room), self.channel)

    def _drop(self, feed: RoomFeed) -> None:
        if self.feeds.get(feed.slug) is feed:
            del self.feeds[feed.slug]
        feed.close()
        metrics.ROOMS.set(len(self.feeds))

    # --- receiving -----------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
                await self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub receive failed on channel %s", self.channel)
                await asyncio.sleep(0.5)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == EVENT_PROBE:
            self.watchdog.probe_returned(int(event["probe"]))
            return
        if kind == EVENT_REVOKE:
            await self.sockets.revoke_user(event["user"], event["session"])
            return
        if kind == EVENT_ADDED:
            self.sockets.notify_user(event["user"], str(event["text"]))
            return
        if kind == EVENT_EVICT:
            await self.sockets.evict_user(event["user"], event["room"], str(event.get("reason", "removed")))
            return
        feed = self.feeds.get(event.get("room", ""))
        if feed is None:
            return
        if kind == EVENT_MESSAGE:
            feed.receive(int(event["seq"]), event["text"], event.get("ts"))
        elif kind == EVENT_PRESENCE:
            fan_out_presence(feed, event)
        elif kind == EVENT_TYPING:
            feed.fan_out(None, event["text"], skip=(event["user"],))


async def _leave_presence(sub: Subscription, attempt: int = 0) -> None:
    try:
        await presence_exit(room=sub.room, user=sub.user, conn=sub.conn)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The node's lease holds the entry for as long as the node lives: try again
        # until Redis answers, or the user would stay online here for good.
        if attempt >= LEAVE_ATTEMPTS:
            logger.error("presence leave of %s in %s failed %d times: %r", sub.user, sub.room, attempt + 1, exc)
            return
        logger.warning("presence leave of %s in %s failed (%r); trying again", sub.user, sub.room, exc)
        hub = _hubs.get(asyncio.get_running_loop())
        if hub is not None:
            hub.grace_leaves.later(LEAVE_RETRY, lambda: _leave_presence(sub, attempt + 1))


# A presence leave that failed is tried again every LEAVE_RETRY s, this many times.
LEAVE_RETRY = 1.0
LEAVE_ATTEMPTS = 120
# How long /readyz waits for the hub to start or to check Redis before saying not ready.
HUB_READY_WAIT = 2.0


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_starting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def get_hub() -> Hub:
    """This process's hub, started on first use (daphne has no startup hook)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is not None:
        return hub
    lock = _starting.setdefault(loop, asyncio.Lock())
    async with lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = Hub(layer())
            await hub.start()
            _hubs[loop] = hub
    return hub


def running_hub() -> Hub | None:
    """This process's hub if it runs, without starting one."""
    return _hubs.get(asyncio.get_running_loop())


# Whether this process is a node, whose hub must run for it to serve (for /readyz).
_wanted = False


async def hub_problem() -> str | None:
    """Why this node's hub cannot serve (for /readyz), or None; starts a hub that failed to boot."""
    if not _wanted:
        return None
    hub = running_hub()
    try:
        async with asyncio.timeout(HUB_READY_WAIT):
            if hub is None:
                hub = await get_hub()
            return await hub.watchdog.ready_problem()
    except Exception as exc:
        return f"hub: {type(exc).__name__}"


def start_in_background() -> None:
    """Start the hub now, without a socket: the node registers and sweeps at once."""
    global _wanted
    _wanted = True
    task = asyncio.get_event_loop().create_task(get_hub())
    task.add_done_callback(_log_boot_failure)
    _boot_tasks.add(task)


async def stop_hub() -> None:
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.stop()


_boot_tasks: set[asyncio.Task[Hub]] = set()


def _log_boot_failure(task: asyncio.Task[Hub]) -> None:
    _boot_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("hub failed to start: %r; it starts again with the first socket", task.exception())
