"""Group sends: what one node tells the others through the channel layer.

The event types are constants of ours, never taken from a client, because a layer
message's type selects what the receiver does with it. Group names come from
`room_group` and `CONTROL_GROUP` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core.signals import setting_changed
from django.db import transaction
from django.utils.module_loading import import_string

from chatcluster import protocol
from chatcluster.conf import NAMESPACE, channel_layer_config
from chatcluster.seams import channels_redis

logger = logging.getLogger(__name__)

EVENT_MESSAGE = "chat.message"
EVENT_PRESENCE = "chat.presence"
EVENT_TYPING = "chat.typing"
# A node's message to itself, to check that its receive path works (chat/watchdog.py).
EVENT_PROBE = "chat.probe"
# Sent to every node: a user's sockets (or one session's) lost their access.
EVENT_REVOKE = "chat.revoke"
# Sent to every node: a user was removed from a private room.
EVENT_EVICT = "chat.evict"
# Sent to every node: a user was made a member of a room (a DM begun, an admin's add).
EVENT_ADDED = "chat.added"
# Every node's channel is in this group, for the events above that concern them all.
CONTROL_GROUP = "chat.control"


def room_group(slug: str) -> str:
    return f"chat.room.{slug}"


_layer: BaseChannelLayer | None = None


def layer() -> BaseChannelLayer:
    """This process's channel layer, made from the app's Redis settings.

    Not the host's CHANNEL_LAYERS: a host's default layer may be in-memory, or serve its
    own consumers, and the cluster needs Redis whatever the host chose.
    """
    global _layer
    if _layer is None:
        config = channel_layer_config()
        _layer = import_string(str(config["BACKEND"]))(**config["CONFIG"])  # type: ignore[arg-type]
    return _layer


def _forget_layer(*, setting: str, **kwargs: object) -> None:
    global _layer
    if setting == NAMESPACE:
        _layer = None


setting_changed.connect(_forget_layer)


async def publish_messages(messages: Sequence[tuple[str, int, str, float]]) -> None:
    """Broadcast stored messages (room, seq, frame, creation time) to their rooms' groups, in one round trip per shard.

    The same Redis messages as one `group_send` each (the layer's group channel and
    serialisation), but pipelined: channels-redis sends every PUBLISH under its shard's
    lock, one round trip at a time, which caps a node's broadcasts at one per round trip.
    """
    outer = layer()
    events = [
        (room_group(room), {"type": EVENT_MESSAGE, "room": room, "seq": seq, "text": text, "ts": ts})
        for room, seq, text, ts in messages
    ]
    if not isinstance(outer, RedisPubSubChannelLayer):
        for group, event in events:
            await outer.group_send(group, event)
        return
    await channels_redis.publish_pipelined(outer, events)


async def publish_typing(room: str, user: str) -> None:
    text = protocol.encode({"type": "typing", "room": room, "user": user})
    await layer().group_send(room_group(room), {"type": EVENT_TYPING, "room": room, "user": user, "text": text})


async def publish_revoke(user_id: int, session_key: str | None = None) -> None:
    """Close, on every node, the sockets of `user_id` (only those of one session if given)."""
    await layer().group_send(CONTROL_GROUP, {"type": EVENT_REVOKE, "user": user_id, "session": session_key})


async def publish_added(user_id: int, room: str) -> None:
    """Tell the open sockets of `user_id`, on every node, that they now belong to `room`."""
    text = protocol.encode({"type": "added", "room": room})
    await layer().group_send(CONTROL_GROUP, {"type": EVENT_ADDED, "user": user_id, "room": room, "text": text})


async def publish_evict(user_id: int, room: str, reason: str = "removed") -> None:
    """End, on every node, the subscriptions of `user_id` to `room`: "removed", "kicked" or "banned"."""
    await layer().group_send(CONTROL_GROUP, {"type": EVENT_EVICT, "user": user_id, "room": room, "reason": reason})


def after_commit(send: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
    """From sync code: run the broadcast `send(*args)` once the transaction commits.

    A lost broadcast is only a delay: every node's access review applies the change from
    the database within CHAT_ACCESS_RECHECK seconds.
    """

    def run() -> None:
        try:
            async_to_sync(send)(*args)
        except Exception as exc:
            logger.warning(
                "%s%r not broadcast (%r); nodes apply it at their next access review", send.__name__, args, exc
            )

    transaction.on_commit(run)
