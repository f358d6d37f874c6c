"""The node's fan-out hub: one channel-layer subscription per room per node.

Every node joins a room's group once, however many local sockets watch the room, and
writes each pre-encoded frame to those sockets. It also puts messages back in `seq`
order: publishers on different nodes reach Redis in any order, and the channel layer
may drop a message, so a gap is first waited for briefly, then read from the database.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Container, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from chat import metrics, protocol
from chat.flow import OutFrame
from chat.redis import all_redis
from chat.services.access import Grant, access_review
from chat.services.liveness import (
    held_shard,
    liveness_release,
    liveness_renew,
    liveness_restore,
    liveness_sweep,
    presence_entry,
    socket_entry,
)
from chat.services.messages import message_frames_between, message_last_seqs
from chat.services.nodes import NodeInfo, node_forget, node_heartbeat

logger = logging.getLogger(__name__)

# Channel-layer event types. They are constants of ours, never taken from a client,
# because a layer message's type selects what the receiver does with it.
EVENT_MESSAGE = "chat.message"
EVENT_PRESENCE = "chat.presence"
EVENT_TYPING = "chat.typing"
EVENT_PROBE = "chat.probe"
# Sent to every node: a user's sockets (or one session's) lost their access.
EVENT_REVOKE = "chat.revoke"
# Sent to every node: a user was removed from a private room.
EVENT_EVICT = "chat.evict"
CONTROL_GROUP = "chat.control"
# Close code of a socket whose credentials no longer hold (logout, deactivation).
CLOSE_UNAUTHENTICATED = 4401

# Close code of a draining node: clients reconnect elsewhere and recover with `since`.
CLOSE_DRAINING = 1012
# Redis holds this key for as long as it keeps its data. A node that finds it gone or
# changed knows Redis restarted empty and lost the channel layer's state with it.
EPOCH_KEY = "chat:epoch"
# A probe the node sends itself through the channel layer must come back within this
# many seconds, or the node's receive path is considered broken and is rebuilt.
PROBE_TIMEOUT = 3.0


def room_group(slug: str) -> str:
    return f"chat.room.{slug}"


def _layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS must define a default layer")
    return layer


async def publish_messages(messages: Sequence[tuple[str, int, str, float]]) -> None:
    """Broadcast stored messages (room, seq, frame, creation time) to their rooms' groups, in one round trip per shard.

    The same Redis messages as one `group_send` each (the layer's group channel and
    serialisation), but pipelined: channels-redis sends every PUBLISH under its shard's
    lock, one round trip at a time, which caps a node's broadcasts at one per round trip.
    """
    outer = _layer()
    events = [
        {"type": EVENT_MESSAGE, "room": room, "seq": seq, "text": text, "ts": ts} for room, seq, text, ts in messages
    ]
    if not isinstance(outer, RedisPubSubChannelLayer):
        for event in events:
            await outer.group_send(room_group(str(event["room"])), event)
        return
    layer = outer._get_layer()
    by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
    for event in events:
        channel = layer._get_group_channel_name(room_group(str(event["room"])))
        by_shard[layer._get_shard(channel)].append((channel, outer.serialize(event)))
    await asyncio.gather(*(_publish_pipelined(shard, items) for shard, items in by_shard.items()))


async def _publish_pipelined(shard: Any, items: list[tuple[str, bytes]]) -> None:
    shard._ensure_redis()
    async with shard._redis.pipeline(transaction=False) as pipe:
        for channel, payload in items:
            pipe.publish(channel, payload)
        await pipe.execute()


async def publish_presence(room: str, joined: list[str], left: list[str], *, skip_user: str = "") -> None:
    """Queue a presence diff for `room`; `skip_user` (who just joined) already has the full list.

    A room's diffs are gathered for CHAT_PRESENCE_COALESCE seconds and sent as one: a join
    storm (a room of 2,000 filling up) costs each member one frame per window, not one
    frame per join, which would be 4 million frames.
    """
    pending = _presence_pending.get(room)
    if pending is None:
        pending = _presence_pending[room] = _PresenceDiff()
        asyncio.get_running_loop().call_later(settings.CHAT_PRESENCE_COALESCE, _presence_flush, room)
    for user in left:
        pending.changes[user] = False
        pending.skip.discard(user)
    for user in joined:
        pending.changes[user] = True
    if skip_user:
        pending.skip.add(skip_user)


@dataclass
class _PresenceDiff:
    # user -> True joined, False left: the last change in the window wins.
    changes: dict[str, bool] = field(default_factory=dict)
    skip: set[str] = field(default_factory=set)


_presence_pending: dict[str, _PresenceDiff] = {}


def _presence_flush(room: str) -> None:
    pending = _presence_pending.pop(room, None)
    if pending is not None:
        asyncio.get_running_loop().create_task(_presence_send(room, pending))


async def _presence_send(room: str, diff: _PresenceDiff) -> None:
    joined = sorted(user for user, on in diff.changes.items() if on)
    left = sorted(user for user, on in diff.changes.items() if not on)
    text = protocol.encode({"type": "presence", "room": room, "joined": joined, "left": left})
    event = {
        "type": EVENT_PRESENCE,
        "room": room,
        "text": text,
        "joined": joined,
        "left": left,
        "skip": sorted(diff.skip),
    }
    try:
        await _layer().group_send(room_group(room), event)
    except Exception as exc:
        # Presence converges anyway: the next subscribe reads the full list, and the
        # sweep announces users whose entries expire.
        metrics.REDIS_ERRORS.labels("presence").inc()
        logger.warning("presence diff for %s failed (%r)", room, exc)


async def publish_typing(room: str, user: str) -> None:
    text = protocol.encode({"type": "typing", "room": room, "user": user})
    await _layer().group_send(room_group(room), {"type": EVENT_TYPING, "room": room, "user": user, "text": text})


# Whether this process was told to stop. It concerns this process alone, so it lives here.
async def publish_revoke(user_id: int, session_key: str | None = None) -> None:
    """Close, on every node, the sockets of `user_id` (only those of one session if given)."""
    await _layer().group_send(CONTROL_GROUP, {"type": EVENT_REVOKE, "user": user_id, "session": session_key})


async def publish_evict(user_id: int, room: str) -> None:
    """End, on every node, the subscriptions of `user_id` to `room`."""
    await _layer().group_send(CONTROL_GROUP, {"type": EVENT_EVICT, "user": user_id, "room": room})


_draining = False


def draining() -> bool:
    """True once this node was told to stop: it takes no new sockets."""
    return _draining


def start_draining() -> None:
    global _draining
    _draining = True


@dataclass(eq=False)
class LocalSocket:
    """A socket on this node, as the hub needs to know it to close or trim it."""

    grant: Grant
    # Closes the socket with a close code (draining, access revoked).
    close: Callable[[int], Awaitable[None]]
    # Ends the socket's subscription to a room it may no longer see.
    evict: Callable[[str], Awaitable[None]]


# Sends or queues a frame for one socket without waiting: fan-out stays synchronous, so
# frames leave in the order they were offered, whichever task offered them.
Send = Callable[[OutFrame], None]


@dataclass(eq=False)
class Subscription:
    """One socket's interest in one room."""

    room: str
    user: str
    conn: str
    send: Send
    # Highest seq sent to this socket; messages at or below it are repeats.
    upto: int = 0
    # Frames held back while the subscribe is still answering; None once live.
    pending: list[tuple[int | None, OutFrame]] | None = field(default_factory=list)
    # Whether its presence entry was written (and so is held by the node's lease).
    present: bool = False

    def offer(self, seq: int | None, frame: OutFrame) -> bool:
        if self.pending is not None:
            self.pending.append((seq, frame))
            return False
        if seq is not None:
            if seq <= self.upto:
                return False
            self.upto = seq
        self.send(frame)
        return True

    def go_live(self, upto: int) -> None:
        """Send what was held back past `upto`, then take frames as they come."""
        held, self.pending = self.pending or [], None
        self.upto = max(self.upto, upto)
        for seq, frame in held:
            self.offer(seq, frame)


@dataclass(eq=False)
class RoomFeed:
    slug: str
    subs: set[Subscription] = field(default_factory=set)
    # Highest seq delivered in order; None until the first subscriber reads it.
    head: int | None = None
    early: dict[int, str] = field(default_factory=dict)
    # Highest seq the database is known to hold: the hub reads it back if no
    # broadcast brings it.
    known: int = 0
    # The room's last seq at the previous tail check.
    tail_seen: int = 0
    joined: asyncio.Future[None] | None = None
    repair: asyncio.Task[None] | None = None

    def missing_upto(self) -> int:
        """The highest seq this feed should hold but has not delivered yet (<= head if none)."""
        early = min(self.early) - 1 if self.early else 0
        return max(self.known, early)


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel = ""
        self.feeds: dict[str, RoomFeed] = {}
        self.sockets: dict[str, LocalSocket] = {}
        self._no_sockets = asyncio.Event()
        self._no_sockets.set()
        self.started_at = time.time()
        self.epoch: str | None = None
        self._probes = itertools.count(1)
        self._probe_sent = 0
        self._probe_sent_at = 0.0
        self._probe_seen = 0
        # Set while Redis is unreachable or came back empty: the watchdog restores.
        self.broken = False
        # The last watchdog failure logged while broken, so an outage logs each kind once.
        self._failure = ""
        self._receiver: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Presence leaves of dropped sockets, waiting out PRESENCE_GRACE.
        self._grace_leaves: set[asyncio.TimerHandle] = set()
        self._leave_tasks: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        return len(self.sockets)

    async def start(self) -> None:
        self.channel = await self.layer.new_channel("node.")
        self._receiver = asyncio.create_task(self._receive_loop())
        await self.layer.group_add(CONTROL_GROUP, self.channel)
        self.epoch = await self._read_epoch()
        # The lease first: every entry a socket writes from now on is held by it.
        await self._renew()
        await self._register()
        metrics.PRESENCE_ENTRIES.set_function(lambda: sum(len(feed.subs) for feed in self.feeds.values()))
        for loop in (self._heartbeat_loop, self._sweep_loop, self._watch_loop, self._access_loop):
            self._tasks.append(asyncio.create_task(loop()))

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._receiver] if self._receiver else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._cancel_grace_leaves()
        # Everything this instance held goes now, not when its lease would lapse.
        left = await liveness_release()
        await self._announce(left, joined=False, now=True)
        await node_forget(node_id=settings.NODE_ID)

    def add_socket(self, socket: LocalSocket) -> None:
        self.sockets[socket.grant.conn] = socket
        self._no_sockets.clear()

    def remove_socket(self, conn: str) -> None:
        self.sockets.pop(conn, None)
        if not self.sockets:
            self._no_sockets.set()

    async def close_sockets(self, code: int, *, wait: float) -> int:
        """Close every local socket with `code`; wait up to `wait` s for them to finish."""
        closers = [socket.close for socket in self.sockets.values()]
        await asyncio.gather(*(close(code) for close in closers), return_exceptions=True)
        try:
            async with asyncio.timeout(wait):
                await self._no_sockets.wait()
        except TimeoutError:
            logger.warning("%d sockets still open after %s s", len(self.sockets), wait)
        return len(closers)

    async def _register(self) -> None:
        await node_heartbeat(
            info=NodeInfo(
                node_id=settings.NODE_ID,
                address=f"127.0.0.1:{settings.NODE_PORT}" if settings.NODE_PORT else "",
                pid=os.getpid(),
                started_at=self.started_at,
                connections=self.connections,
                subscriptions=sum(len(feed.subs) for feed in self.feeds.values()),
                heartbeat_at=time.time(),
            )
        )

    # --- subscriptions -------------------------------------------------------

    async def attach(self, sub: Subscription) -> None:
        """Start routing the room's frames to `sub` (held back until it goes live)."""
        feed = self.feeds.get(sub.room)
        if feed is None:
            feed = self.feeds[sub.room] = RoomFeed(sub.room)
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
        """Tell a fresh feed where the room stands, as read after its group was joined.

        Returns the feed's head: a socket whose read is older than a concurrent
        subscriber's may find the feed already past its `last_seq`.
        """
        feed = self.feeds.get(room)
        if feed is None:
            return last_seq
        if feed.head is None:
            feed.head = last_seq
            feed.tail_seen = last_seq
            self._advance(feed)
        return feed.head

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
        if feed.repair is not None:
            feed.repair.cancel()
        metrics.ROOMS.set(len(self.feeds))

    def held_entries(self) -> list[str]:
        """Everything this node's sockets hold in Redis, as liveness entries."""
        entries = [
            presence_entry(room=sub.room, user=sub.user, conn=sub.conn)
            for feed in self.feeds.values()
            for sub in feed.subs
            if sub.present
        ]
        entries += [socket_entry(user_id=s.grant.user_id, conn=conn) for conn, s in self.sockets.items()]
        return entries

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
        if event["type"] == EVENT_PROBE:
            self._probe_seen = max(self._probe_seen, int(event["probe"]))
            return
        if event["type"] == EVENT_REVOKE:
            await self._revoke(
                conn
                for conn, socket in self.sockets.items()
                if socket.grant.user_id == event["user"] and event["session"] in (None, socket.grant.session_key)
            )
            return
        if event["type"] == EVENT_EVICT:
            await self._evict(
                (conn, event["room"]) for conn, socket in self.sockets.items() if socket.grant.user_id == event["user"]
            )
            return
        feed = self.feeds.get(event.get("room", ""))
        if feed is None:
            return
        kind = event["type"]
        if kind == EVENT_MESSAGE:
            seq = int(event["seq"])
            if feed.head is not None and seq <= feed.head:
                return
            metrics.PUBLISH_TO_DELIVER.observe(max(0.0, time.time() - event.get("ts", time.time())))
            feed.early[seq] = event["text"]
            self._advance(feed)
        elif kind == EVENT_PRESENCE:
            self._fan_out_presence(feed, event)
        elif kind == EVENT_TYPING:
            self._fan_out(feed, None, event["text"], skip=(event["user"],))

    def _advance(self, feed: RoomFeed) -> None:
        if feed.head is None:
            return
        while feed.head + 1 in feed.early:
            feed.head += 1
            self._fan_out(feed, feed.head, feed.early.pop(feed.head))
        for seq in [s for s in feed.early if s <= feed.head]:
            del feed.early[seq]
        if feed.missing_upto() > feed.head and (feed.repair is None or feed.repair.done()):
            feed.repair = asyncio.create_task(self._repair(feed))

    def _fan_out(self, feed: RoomFeed, seq: int | None, text: str, skip: Container[str] = ()) -> None:
        # One frame object for every recipient: its wire bytes are built once, on first use.
        frame = OutFrame(text)
        sent = 0
        for sub in feed.subs:
            if sub.user not in skip and sub.offer(seq, frame):
                sent += 1
        metrics.FRAMES_OUT.inc(sent)
        if seq is not None:
            metrics.MESSAGES_DELIVERED.inc(sent)

    def _fan_out_presence(self, feed: RoomFeed, event: dict[str, Any]) -> None:
        skip = event.get("skip") or []
        skip = {skip} if isinstance(skip, str) else set(skip)  # a str from nodes of the previous release
        if not skip:
            self._fan_out(feed, None, event["text"])
            return
        # A joiner's sockets already hold the full list: they get the diff without
        # themselves (or nothing, if that leaves it empty). One pass over the room.
        shared = OutFrame(event["text"])
        joined, left = event.get("joined", []), event.get("left", [])
        own: dict[str, OutFrame | None] = {}
        sent = 0
        for sub in feed.subs:
            frame: OutFrame | None = shared
            if sub.user in skip:
                if sub.user not in own:
                    mine = [name for name in joined if name != sub.user]
                    text = {"type": "presence", "room": feed.slug, "joined": mine, "left": left}
                    own[sub.user] = OutFrame(protocol.encode(text)) if mine or left else None
                frame = own[sub.user]
            if frame is not None and sub.offer(None, frame):
                sent += 1
        metrics.FRAMES_OUT.inc(sent)

    async def _repair(self, feed: RoomFeed) -> None:
        """Fill a seq gap: wait for stragglers, then read what is still missing."""
        try:
            async with asyncio.timeout(settings.CHAT_WATCH_TIMEOUT):
                await self._repair_now(feed)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The next tail check or message schedules another attempt; a repair that
            # hung would otherwise keep the room's feed stalled for good.
            logger.exception("gap repair failed in room %s", feed.slug)

    async def _repair_now(self, feed: RoomFeed) -> None:
        await asyncio.sleep(settings.CHAT_REORDER_WAIT)
        while feed.head is not None and feed.missing_upto() > feed.head:
            if feed.head + 1 in feed.early:
                self._advance(feed)
                continue
            upto = feed.missing_upto()
            missing = await database_sync_to_async(message_frames_between)(
                slug=feed.slug, after=feed.head, before=upto + 1
            )
            metrics.GAP_REPAIRS.inc()
            for seq, text in missing:
                if seq > feed.head:
                    feed.early.setdefault(seq, text)
            # Broadcasts may have moved the head on while the database answered.
            if feed.head < upto and feed.head + 1 not in feed.early:
                # Seqs are committed in order, so this means rows were deleted.
                logger.error("room %s: seq %d..%d missing from the database", feed.slug, feed.head + 1, upto)
                feed.head = max(feed.head, min(feed.early) - 1 if feed.early else upto)
            self._advance(feed)

    # --- the watchdog: the database is the record, Redis only carries hints -------

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_TAIL_CHECK)
            try:
                async with asyncio.timeout(settings.CHAT_WATCH_TIMEOUT):
                    await self._check_redis()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = repr(exc)
                if not self.broken:
                    logger.warning("redis unreachable (%s); restoring when it is back", failure)
                elif failure != self._failure:
                    # Once per new kind of failure: a rebuild that fails other than by
                    # Redis being away is the thing to read about, not the outage.
                    logger.warning("rebuilding after losing redis failed: %s", failure, exc_info=exc)
                self._failure = failure
                metrics.REDIS_ERRORS.labels("watchdog").inc()
                self.broken = True
            try:
                async with asyncio.timeout(settings.CHAT_WATCH_TIMEOUT):
                    await self._check_tails()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is down: publishes answer `unavailable` meanwhile, and
                # the first check after it is back catches up.
                logger.warning("tail check failed: %r", exc)

    async def _read_epoch(self) -> str:
        """Every shard's epoch, joined: one shard that lost its data changes the whole."""

        async def one(redis: Any) -> str:
            await redis.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
            return str(await redis.get(EPOCH_KEY))

        return ",".join(await asyncio.gather(*(one(redis) for redis in all_redis())))

    async def _check_redis(self) -> None:
        if self._probe_sent > self._probe_seen and time.monotonic() - self._probe_sent_at > PROBE_TIMEOUT:
            if not self.broken:
                logger.warning("probe %d did not come back through the channel layer", self._probe_sent)
            self.broken = True
        epoch = await self._read_epoch()
        if epoch != self.epoch:
            logger.warning("redis lost its data (epoch %s -> %s)", self.epoch, epoch)
            self.broken = True
        if self.broken:
            await self._restore()
            self.epoch = epoch
            self.broken = False
        if self._probe_sent <= self._probe_seen or time.monotonic() - self._probe_sent_at > PROBE_TIMEOUT:
            self._probe_sent, self._probe_sent_at = next(self._probes), time.monotonic()
            await self.layer.send(self.channel, {"type": EVENT_PROBE, "probe": self._probe_sent})

    async def _restore(self) -> None:
        """Rebuild what Redis lost: this node's channel, groups, presence and registry entry."""
        if isinstance(self.layer, RedisPubSubChannelLayer):
            # Its connection may be subscribed to nothing after a restart, and it has no
            # reconnect hook: start it over. The hub is the layer's only user on a node.
            if self._receiver is not None:
                self._receiver.cancel()
                await asyncio.gather(self._receiver, return_exceptions=True)
            await self.layer.flush()
            self.channel = await self.layer.new_channel("node.")
            self._receiver = asyncio.create_task(self._receive_loop())
        await self.layer.group_add(CONTROL_GROUP, self.channel)
        for slug in list(self.feeds):
            await self.layer.group_add(room_group(slug), self.channel)
        self._probe_sent = self._probe_seen = 0
        await self._renew(everywhere=True)
        await self._register()
        metrics.REDIS_RESTORES.inc()
        logger.warning("restored %d room subscriptions after losing redis", len(self.feeds))
        # Whatever was published meanwhile is in the database: read it now.
        await self._check_tails(now=True)

    async def _check_tails(self, *, now: bool = False) -> None:
        """Find messages whose broadcast never came, and read them from the database.

        A room's last seq is only trusted one check later (or at once, after Redis came
        back): a broadcast in flight normally arrives in milliseconds.
        """
        feeds = [feed for feed in self.feeds.values() if feed.head is not None]
        if not feeds:
            return
        tails = await database_sync_to_async(message_last_seqs)(slugs=[feed.slug for feed in feeds])
        for feed in feeds:
            tail = tails.get(feed.slug, 0)
            overdue = tail if now else feed.tail_seen
            feed.tail_seen = tail
            if feed.head is not None and overdue > feed.head:
                metrics.TAIL_REPAIRS.inc()
                feed.known = max(feed.known, overdue)
                self._advance(feed)

    # --- access: sockets whose user lost the right to them -------------------------

    async def _revoke(self, conns: Iterable[str]) -> None:
        sockets = [self.sockets[conn] for conn in conns if conn in self.sockets]
        if sockets:
            logger.info("closing %d sockets whose access was revoked", len(sockets))
        await asyncio.gather(*(s.close(CLOSE_UNAUTHENTICATED) for s in sockets), return_exceptions=True)

    async def _evict(self, pairs: Iterable[tuple[str, str]]) -> None:
        evictions = [(self.sockets[conn], room) for conn, room in pairs if conn in self.sockets]
        await asyncio.gather(*(socket.evict(room) for socket, room in evictions), return_exceptions=True)

    async def _access_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_ACCESS_RECHECK * random.uniform(0.8, 1.0))
            if not self.sockets:
                continue
            try:
                review = await database_sync_to_async(access_review)(
                    grants=[socket.grant for socket in self.sockets.values()],
                    subscriptions=[
                        (sub.conn, self.sockets[sub.conn].grant.user_id, sub.room)
                        for feed in self.feeds.values()
                        for sub in feed.subs
                        if sub.conn in self.sockets
                    ],
                )
                await self._revoke(review.revoked)
                await self._evict(review.evicted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("access review failed: %r", exc)

    # --- presence --------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # One lease renewal per shard and one registry write per PRESENCE_TTL / 3,
        # whatever the number of sockets: an idle socket costs Redis nothing. Jitter
        # keeps the nodes of a cluster from renewing in lockstep.
        while True:
            await asyncio.sleep(settings.PRESENCE_TTL / 3 * random.uniform(0.8, 1.0))
            try:
                await self._renew()
                await self._register()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("lease renewal failed")

    async def _renew(self, *, everywhere: bool = False) -> None:
        """Renew this node's lease; where it had lapsed (or `everywhere`), write its entries again.

        A lapsed lease means Redis lost it (a restart without data) or another node swept
        this one while it stalled: either way this node's sockets are still open, so what
        they hold is written back, and users who reappear are announced.
        """
        lapsed = await liveness_renew()
        shards = set(range(len(all_redis()))) if everywhere else set(lapsed)
        if not shards:
            return
        by_shard: dict[int, list[str]] = {shard: [] for shard in shards}
        for entry in self.held_entries():
            shard = held_shard(entry)
            if shard in by_shard:
                by_shard[shard].append(entry)
        for shard, entries in by_shard.items():
            if entries:
                logger.warning("writing %d held entries again on redis shard %d", len(entries), shard)
            await self._announce(await liveness_restore(shard=shard, entries=entries), joined=True)

    async def _sweep_loop(self) -> None:
        # Every node sweeps about once a second: one script call per shard that finds
        # lapsed leases. The script hands each lapsed entry to exactly one node, so a
        # dead node's users are announced once, within a second of its lease's end.
        while True:
            await asyncio.sleep(random.uniform(0.5, 1.0))
            try:
                await self._announce(await liveness_sweep(), joined=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("presence sweep failed")

    def leave_later(self, delay: float, leave: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `leave` after `delay` s: a dropped socket's presence outlives it briefly,
        so a quick reconnect does not flicker left-then-joined. If this node dies first,
        its lease lapses and the sweep does it."""

        def fire(handle: list[asyncio.TimerHandle]) -> None:
            self._grace_leaves.discard(handle[0])
            task = asyncio.get_running_loop().create_task(leave())
            self._leave_tasks.add(task)
            task.add_done_callback(self._leave_tasks.discard)

        holder: list[asyncio.TimerHandle] = []
        holder.append(asyncio.get_running_loop().call_later(delay, fire, holder))
        self._grace_leaves.add(holder[0])

    def _cancel_grace_leaves(self) -> None:
        for handle in self._grace_leaves:
            handle.cancel()
        self._grace_leaves.clear()

    async def _announce(self, pairs: list[tuple[str, str]], *, joined: bool, now: bool = False) -> None:
        by_room: dict[str, list[str]] = {}
        for room, user in pairs:
            by_room.setdefault(room, []).append(user)
        for room, users in by_room.items():
            if now:
                # A stopping node cannot wait for the coalescing window.
                diff = _PresenceDiff(changes={user: joined for user in users})
                await _presence_send(room, diff)
            else:
                await publish_presence(room, users if joined else [], [] if joined else users)


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
            hub = Hub(_layer())
            await hub.start()
            _hubs[loop] = hub
    return hub


def start_in_background() -> None:
    """Start the hub now, without a socket: the node registers and sweeps at once."""
    task = asyncio.get_event_loop().create_task(get_hub())
    task.add_done_callback(_log_boot_failure)
    _boot_tasks.add(task)


async def close_sockets(code: int, *, wait: float) -> int:
    hub = _hubs.get(asyncio.get_running_loop())
    return 0 if hub is None else await hub.close_sockets(code, wait=wait)


async def stop_hub() -> None:
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.stop()


_boot_tasks: set[asyncio.Task[Hub]] = set()


def _log_boot_failure(task: asyncio.Task[Hub]) -> None:
    _boot_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("hub failed to start: %r; it starts again with the first socket", task.exception())
