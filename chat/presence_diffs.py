"""Presence as the node announces it: coalesced diffs out, per-recipient frames in.

A room's diffs are gathered for CHAT_PRESENCE_COALESCE seconds and sent as one group
event. A joiner's own sockets already hold the full list, so they get the diff without
themselves. The presence state itself lives in Redis (chat/services/presence.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from chatcluster import metrics, protocol
from chatcluster.broadcast import EVENT_PRESENCE, layer, room_group
from chatcluster.conf import chat_settings
from chatcluster.feeds import RoomFeed
from chatcluster.flow import OutFrame
from chatcluster.services.presence import presence_join, presence_leave, presence_list

logger = logging.getLogger(__name__)


async def publish_presence(room: str, joined: list[str], left: list[str], *, skip_user: str = "") -> None:
    """Queue a presence diff for `room`; `skip_user` (who just joined) already has the full list.

    A room's diffs are gathered for CHAT_PRESENCE_COALESCE seconds and sent as one: a join
    storm (a room of 2,000 filling up) costs each member one frame per window, not one
    frame per join, which would be 4 million frames.
    """
    pending = _pending.get(room)
    if pending is None:
        pending = _pending[room] = _PresenceDiff()
        asyncio.get_running_loop().call_later(chat_settings.CHAT_PRESENCE_COALESCE, _flush, room)
    for user in left:
        pending.changes[user] = False
        pending.skip.discard(user)
    for user in joined:
        pending.changes[user] = True
    if skip_user:
        pending.skip.add(skip_user)


async def presence_enter(*, room: str, user: str, conn: str, fresh: bool) -> list[str]:
    """The presence steps of a subscribe: join (announced if `user` just arrived) and the room's list.

    A first subscribe writes the entry and reads the list in one round trip.
    """
    if not fresh:
        return await presence_list(room=room)
    joined, present = await presence_join(room=room, user=user, conn=conn)
    if joined:
        await publish_presence(room, [user], [], skip_user=user)
    return present


async def presence_exit(*, room: str, user: str, conn: str) -> None:
    """The presence step of an unsubscribe: leave, announced if that was `user`'s last connection."""
    if await presence_leave(room=room, user=user, conn=conn):
        await publish_presence(room, [], [user])


async def send_presence_now(room: str, joined: list[str], left: list[str]) -> None:
    """Broadcast a diff at once, without the coalescing window (a node that is stopping)."""
    await _send(room, _PresenceDiff(changes={**dict.fromkeys(joined, True), **dict.fromkeys(left, False)}))


@dataclass
class _PresenceDiff:
    # user -> True joined, False left: the last change in the window wins.
    changes: dict[str, bool] = field(default_factory=dict)
    skip: set[str] = field(default_factory=set)


_pending: dict[str, _PresenceDiff] = {}


def _flush(room: str) -> None:
    pending = _pending.pop(room, None)
    if pending is not None:
        asyncio.get_running_loop().create_task(_send(room, pending))


async def _send(room: str, diff: _PresenceDiff) -> None:
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
        await layer().group_send(room_group(room), event)
    except Exception as exc:
        # Presence converges anyway: the next subscribe reads the full list, and the
        # sweep announces users whose entries expire.
        metrics.REDIS_ERRORS.labels("presence").inc()
        logger.warning("presence diff for %s failed (%r)", room, exc)


def fan_out_presence(feed: RoomFeed, event: dict[str, Any]) -> None:
    """Offer a presence event to the feed's subscriptions, without joiners in their own diff."""
    skip = event.get("skip") or []
    skip = {skip} if isinstance(skip, str) else set(skip)  # a str from nodes of the previous release
    if not skip:
        feed.fan_out(None, event["text"])
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
