"""The watchdog: the database is the record, Redis only carries hints.

Every CHAT_TAIL_CHECK seconds it checks that Redis still holds the node's state (the
epoch) and that the node's receive path works (a probe the node sends itself), rebuilds
what Redis lost when either fails, and runs the tail check: rooms whose newest message
never arrived are read from the database.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from chatcluster import metrics, upkeep
from chatcluster.broadcast import CONTROL_GROUP, EVENT_PROBE, room_group
from chatcluster.conf import chat_settings
from chatcluster.feeds import RoomFeed
from chatcluster.redis import all_redis
from chatcluster.services.messages import message_last_seqs

logger = logging.getLogger(__name__)

# Redis holds this key for as long as it keeps its data. A node that finds it gone or
# changed knows Redis restarted empty and lost the channel layer's state with it.
EPOCH_KEY = "chat:epoch"
# A probe the node sends itself through the channel layer must come back within this
# many seconds, or the node's receive path is considered broken and is rebuilt.
PROBE_TIMEOUT = 3.0


class Watched(upkeep.LocalNode, Protocol):
    """What the watchdog checks and rebuilds: the hub's layer channel, groups and feeds."""

    layer: BaseChannelLayer
    channel: str

    async def renew_channel(self) -> None:
        """Flush the layer, take a new channel and receive on it."""


async def read_epoch() -> str:
    """Every shard's epoch, joined: one shard that lost its data changes the whole."""

    async def one(redis: Any) -> str:
        await redis.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
        return str(await redis.get(EPOCH_KEY))

    return ",".join(await asyncio.gather(*(one(redis) for redis in all_redis())))


async def check_tails(feeds: dict[str, RoomFeed], *, now: bool = False) -> None:
    """Find messages whose broadcast never came, and read them from the database.

    A room's last seq is only trusted one check later (or at once, after Redis came
    back): a broadcast in flight normally arrives in milliseconds.
    """
    live = [feed for feed in feeds.values() if feed.head is not None]
    if not live:
        return
    tails = await database_sync_to_async(message_last_seqs)(slugs=[feed.slug for feed in live])
    for feed in live:
        feed.check_tail(tails.get(feed.slug, 0), now=now)


class Watchdog:
    def __init__(self, node: Watched) -> None:
        self.node = node
        self.epoch: str | None = None
        self._probes = itertools.count(1)
        self._probe_sent = 0
        self._probe_sent_at = 0.0
        self._probe_seen = 0
        # Set while Redis is unreachable or came back empty: the watchdog restores.
        self.broken = False
        # The last watchdog failure logged while broken, so an outage logs each kind once.
        self._failure = ""
        # Set to check Redis now rather than at the next CHAT_TAIL_CHECK.
        self.wake = asyncio.Event()

    async def start(self) -> None:
        self.epoch = await read_epoch()

    def probe_returned(self, probe: int) -> None:
        self._probe_seen = max(self._probe_seen, probe)

    async def ready_problem(self) -> str | None:
        """Why this node cannot serve yet after a Redis outage (for /readyz), or None.

        Redis answering is not enough: until the node has rebuilt what Redis lost, a
        socket would subscribe to a room whose broadcasts never reach this node.
        """
        if self.broken:
            return "restoring after a redis outage"
        if await read_epoch() != self.epoch:
            # Redis came back empty and the loop has not looked yet: look now.
            self.wake.set()
            return "redis lost its data; restoring"
        return None

    async def loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(chat_settings.CHAT_TAIL_CHECK):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            try:
                async with asyncio.timeout(chat_settings.CHAT_WATCH_TIMEOUT):
                    await self.check_redis()
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
                async with asyncio.timeout(chat_settings.CHAT_WATCH_TIMEOUT):
                    await check_tails(self.node.feeds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is down: publishes answer `unavailable` meanwhile, and
                # the first check after it is back catches up.
                logger.warning("tail check failed: %r", exc)

    async def check_redis(self) -> None:
        if self._probe_sent > self._probe_seen and time.monotonic() - self._probe_sent_at > PROBE_TIMEOUT:
            if not self.broken:
                logger.warning("probe %d did not come back through the channel layer", self._probe_sent)
            self.broken = True
        epoch = await read_epoch()
        if epoch != self.epoch:
            logger.warning("redis lost its data (epoch %s -> %s)", self.epoch, epoch)
            self.broken = True
        if self.broken:
            await self.restore()
            self.epoch = epoch
            self.broken = False
        if self._probe_sent <= self._probe_seen or time.monotonic() - self._probe_sent_at > PROBE_TIMEOUT:
            self._probe_sent, self._probe_sent_at = next(self._probes), time.monotonic()
            await self.node.layer.send(self.node.channel, {"type": EVENT_PROBE, "probe": self._probe_sent})

    async def restore(self) -> None:
        """Rebuild what Redis lost: this node's channel, groups, presence and registry entry."""
        node = self.node
        if isinstance(node.layer, RedisPubSubChannelLayer):
            # Its connection may be subscribed to nothing after a restart, and it has no
            # reconnect hook: start it over. The hub is the layer's only user on a node.
            await node.renew_channel()
        await node.layer.group_add(CONTROL_GROUP, node.channel)
        for slug in list(node.feeds):
            await node.layer.group_add(room_group(slug), node.channel)
        self._probe_sent = self._probe_seen = 0
        await upkeep.renew(node, everywhere=True)
        await upkeep.register(node)
        metrics.REDIS_RESTORES.inc()
        logger.warning("restored %d room subscriptions after losing redis", len(node.feeds))
        # Whatever was published meanwhile is in the database: read it now.
        await check_tails(node.feeds, now=True)
