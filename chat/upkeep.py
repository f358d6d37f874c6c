"""The node's upkeep loops: presence heartbeat, presence sweep, and the access review.

Each round is a small function of its own that calls the services once, so a loop's body
can be replaced without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from chat.feeds import RoomFeed
from chat.lifecycle import LocalSockets
from chat.presence_diffs import publish_presence
from chat.services.access import access_review
from chat.services.connections import connection_heartbeat
from chat.services.nodes import NodeInfo, node_forget, node_heartbeat
from chat.services.presence import presence_heartbeat, presence_sweep

logger = logging.getLogger(__name__)


class LocalNode(Protocol):
    """What upkeep reads of the hub: its feeds, its sockets and when it started."""

    feeds: dict[str, RoomFeed]
    sockets: LocalSockets
    started_at: float


def local_entries(node: LocalNode) -> list[tuple[str, str, str]]:
    """This node's presence entries: (room, user, connection) of every subscription."""
    return [(sub.room, sub.user, sub.conn) for feed in node.feeds.values() for sub in feed.subs]


async def announce(pairs: list[tuple[str, str]], *, joined: bool) -> None:
    """Queue the presence diffs for (room, user) pairs that all joined, or all left."""
    by_room: dict[str, list[str]] = {}
    for room, user in pairs:
        by_room.setdefault(room, []).append(user)
    for room, users in by_room.items():
        await publish_presence(room, users if joined else [], [] if joined else users)


async def register(node: LocalNode) -> None:
    """Write this node's entry in the node registry."""
    await node_heartbeat(
        info=NodeInfo(
            node_id=settings.NODE_ID,
            address=f"127.0.0.1:{settings.NODE_PORT}" if settings.NODE_PORT else "",
            pid=os.getpid(),
            started_at=node.started_at,
            connections=len(node.sockets),
            subscriptions=sum(len(feed.subs) for feed in node.feeds.values()),
            heartbeat_at=time.time(),
        )
    )


async def presence_refresh(node: LocalNode) -> None:
    """Refresh this node's presence entries; users whose entries had been swept are announced as joined."""
    await announce(await presence_heartbeat(entries=local_entries(node)), joined=True)


async def heartbeat(node: LocalNode) -> None:
    """One heartbeat: presence entries, socket counts, the registry entry."""
    await presence_refresh(node)
    await connection_heartbeat(entries=[(s.grant.user_id, conn) for conn, s in node.sockets.by_conn.items()])
    await register(node)


async def sweep() -> None:
    """One sweep: announce the users whose every connection expired."""
    await announce(await presence_sweep(), joined=False)


async def heartbeat_loop(node: LocalNode) -> None:
    # A third of the TTL: an entry survives two lost heartbeats. Jitter keeps the
    # nodes of a cluster from refreshing in lockstep.
    while True:
        await asyncio.sleep(settings.PRESENCE_TTL / 3 * random.uniform(0.8, 1.0))
        try:
            await heartbeat(node)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("presence heartbeat failed")


async def sweep_loop() -> None:
    # Every node sweeps about once a second; the script hands each expired user to
    # exactly one of them, so a dead node's users are announced once, within a
    # second of their TTL.
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
        await asyncio.sleep(settings.CHAT_ACCESS_RECHECK * random.uniform(0.8, 1.0))
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
    await node_forget(node_id=settings.NODE_ID)
