"""The node's upkeep: its lease and registry entry, the sweep of lapsed leases, the access review.

Each round is a small function of its own that calls the services once, so a loop's body
can be replaced without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from channels.db import database_sync_to_async

from chatcluster.conf import chat_settings
from chatcluster.feeds import RoomFeed
from chatcluster.lifecycle import LocalSockets
from chatcluster.presence_diffs import publish_presence, send_presence_now
from chatcluster.redis import shard_count
from chatcluster.services.access import access_review
from chatcluster.services.liveness import (
    held_shard,
    liveness_release,
    liveness_renew,
    liveness_restore,
    liveness_sweep,
    presence_entry,
    socket_entry,
)
from chatcluster.services.nodes import NodeInfo, node_forget, node_heartbeat

logger = logging.getLogger(__name__)


class LocalNode(Protocol):
    """What upkeep reads of the hub: its feeds, its sockets and when it started."""

    feeds: dict[str, RoomFeed]
    sockets: LocalSockets
    started_at: float
    # Shards whose lease had lapsed but whose entries could not be written back yet.
    unrestored_shards: set[int]


def held_entries(node: LocalNode) -> list[str]:
    """Everything this node's sockets hold in Redis, as liveness entries."""
    entries = [
        presence_entry(room=sub.room, user=sub.user, conn=sub.conn)
        for feed in node.feeds.values()
        for sub in feed.subs
        if sub.present
    ]
    entries += [socket_entry(user_id=s.grant.user_id, conn=conn) for conn, s in node.sockets.by_conn.items()]
    return entries


async def announce(pairs: list[tuple[str, str]], *, joined: bool, now: bool = False) -> None:
    """Queue the presence diffs for (room, user) pairs that all joined, or all left (`now`: send at once)."""
    by_room: dict[str, list[str]] = {}
    for room, user in pairs:
        by_room.setdefault(room, []).append(user)
    for room, users in by_room.items():
        joiners, leavers = (users, []) if joined else ([], users)
        if now:
            await send_presence_now(room, joiners, leavers)
        else:
            await publish_presence(room, joiners, leavers)


async def register(node: LocalNode) -> None:
    """Write this node's entry in the node registry."""
    await node_heartbeat(
        info=NodeInfo(
            node_id=chat_settings.NODE_ID,
            address=f"127.0.0.1:{chat_settings.NODE_PORT}" if chat_settings.NODE_PORT else "",
            pid=os.getpid(),
            started_at=node.started_at,
            connections=len(node.sockets),
            subscriptions=sum(len(feed.subs) for feed in node.feeds.values()),
            heartbeat_at=time.time(),
        )
    )


async def renew(node: LocalNode, *, everywhere: bool = False) -> None:
    """Renew this node's lease; where it had lapsed (or `everywhere`), write its entries again.

    A lapsed lease means Redis lost it (a restart without data) or another node swept
    this one while it stalled: either way this node's sockets are still open, so what
    they hold is written back, and users who reappear are announced.
    """
    lapsed = await liveness_renew()
    # The renewal itself re-creates a lapsed lease, so a write-back that fails once would
    # not be seen again by the next heartbeat: such shards stay due until it succeeds.
    node.unrestored_shards |= set(range(shard_count())) if everywhere else set(lapsed)
    if not node.unrestored_shards:
        return
    by_shard: dict[int, list[str]] = {shard: [] for shard in node.unrestored_shards}
    for entry in held_entries(node):
        shard = held_shard(entry)
        if shard in by_shard:
            by_shard[shard].append(entry)
    for shard, entries in by_shard.items():
        if entries:
            logger.warning("writing %d held entries again on redis shard %d", len(entries), shard)
        await announce(await liveness_restore(shard=shard, entries=entries), joined=True)
        node.unrestored_shards.discard(shard)


async def heartbeat(node: LocalNode) -> None:
    """One heartbeat: the lease (one call per shard, whatever the sockets), then the registry entry."""
    await renew(node)
    await register(node)


async def sweep() -> None:
    """One sweep: release what nodes whose lease lapsed held, and announce who left."""
    await announce(await liveness_sweep(), joined=False)


async def release() -> None:
    """A stopping node drops everything it holds at once, and announces who left."""
    await announce(await liveness_release(), joined=False, now=True)


class GraceLeaves:
    """Presence leaves waiting out a delay (PRESENCE_GRACE, or a retry), cancelled when the node stops."""

    def __init__(self) -> None:
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def later(self, delay: float, leave: Callable[[], Coroutine[Any, Any, None]]) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            task = loop.create_task(leave())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)

    def cancel(self) -> None:
        """Drop the waiting leaves: the node's release removes their entries anyway."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


async def heartbeat_loop(node: LocalNode) -> None:
    # One lease renewal per shard and one registry write per PRESENCE_TTL / 3, whatever
    # the number of sockets: an idle socket costs Redis nothing. A lease survives two
    # lost renewals. Jitter keeps the nodes of a cluster from renewing in lockstep.
    while True:
        await asyncio.sleep(chat_settings.PRESENCE_TTL / 3 * random.uniform(0.8, 1.0))
        try:
            await heartbeat(node)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("lease renewal failed")


async def sweep_loop() -> None:
    # Every node sweeps about once a second: one script call per shard finds lapsed
    # leases. The script hands each lapsed entry to exactly one node, so a dead node's
    # users are announced once, within a second of its lease's end.
    while True:
        await asyncio.sleep(random.uniform(0.5, 1.0))
        try:
            await sweep()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("presence sweep failed")


async def review_access(node: LocalNode) -> None:
    """Close the sockets whose user lost the right to them; end subscriptions to rooms they may no longer see."""
    sockets = node.sockets.by_conn
    review = await database_sync_to_async(access_review)(
        grants=[socket.grant for socket in sockets.values()],
        subscriptions=[
            (sub.conn, sockets[sub.conn].grant.user_id, sub.room)
            for feed in node.feeds.values()
            for sub in feed.subs
            if sub.conn in sockets
        ],
    )
    await node.sockets.revoke(review.revoked)
    await node.sockets.evict(review.evicted)


async def access_loop(node: LocalNode) -> None:
    while True:
        await asyncio.sleep(chat_settings.CHAT_ACCESS_RECHECK * random.uniform(0.8, 1.0))
        if not node.sockets:
            continue
        try:
            await review_access(node)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("access review failed: %r", exc)


async def forget() -> None:
    """Remove this node's entry from the node registry (a drained node, as it exits)."""
    await node_forget(node_id=chat_settings.NODE_ID)
