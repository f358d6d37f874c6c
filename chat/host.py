"""The Python API for host code: publish into a room and read who is in it.

From a view, a management command, a task or a consumer of the host's own:

    from chatcluster.host import room_publish_sync
    published = room_publish_sync(room="deploys", user=bot, body="v2.3 is live")

A publish here is a socket's publish: the same policy check (CHAT_POLICY), storage and
seq, broadcast to every node, idempotency key and message_posted signal. The user's
rate limit applies unless `rate_limited=False` (code acting on its own authority). A
refusal raises ChatError, whose `code` is one of the protocol's error codes.

Publish after your own transaction commits (`transaction.on_commit`): the message is
stored by a connection of its own and does not roll back with yours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from chatcluster.errors import ChatError
from chatcluster.publisher import get_publisher
from chatcluster.services.messages import PublishRequest
from chatcluster.services.presence import presence_list
from chatcluster.services.rooms import room_check_slug

__all__ = ["ChatError", "Published", "room_presence", "room_presence_sync", "room_publish", "room_publish_sync"]


@dataclass(frozen=True)
class Published:
    room: str
    seq: int
    # False when `key` matched an earlier publish: nothing new was stored, `seq` is the first's.
    created: bool


async def room_publish(
    *, room: str, user: Any, body: str, key: str | None = None, rate_limited: bool = True
) -> Published:
    """Store `body` in `room` as `user`'s message and broadcast it; its seq once stored."""
    posted = await get_publisher().publish(
        PublishRequest(slug=room, author=user, body=body, key=key, rate_limited=rate_limited)
    )
    return Published(room=posted.room, seq=posted.seq, created=posted.created)


def room_publish_sync(
    *, room: str, user: Any, body: str, key: str | None = None, rate_limited: bool = True
) -> Published:
    """`room_publish` for sync code (not from a thread that runs an event loop)."""
    return async_to_sync(room_publish)(room=room, user=user, body=body, key=key, rate_limited=rate_limited)


async def room_presence(*, room: str) -> list[str]:
    """The usernames present in `room` across every node, sorted."""
    room_check_slug(slug=room)
    return await presence_list(room=room)


def room_presence_sync(*, room: str) -> list[str]:
    return async_to_sync(room_presence)(room=room)
