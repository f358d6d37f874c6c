"""Subscriptions: the state a subscriber starts from, and what it missed."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.services.messages import message_frames_after
from chatcluster.services.rooms import room_resolve


@dataclass(frozen=True)
class RoomSnapshot:
    slug: str
    last_seq: int
    # Encoded `message` frames with seq > since, oldest first; empty without `since`.
    replay: list[str]
    # None without `since`; False when more was missed than the server replays.
    recovered: bool | None


def subscription_snapshot(*, slug: str, user: User, since: int | None) -> RoomSnapshot:
    """What a new subscriber needs: the last seq and, with `since`, what it missed."""
    # One read: the room row, read after the node joined the room's group, carries the
    # last seq, so nothing committed later can slip past the new subscriber.
    room = room_resolve(slug=slug, user=user, create=True)
    last_seq = room.last_seq
    if since is not None and since > last_seq:
        raise ChatError("bad_request", f"since={since} is past the last message of {slug} ({last_seq})")
    if since is None:
        return RoomSnapshot(slug=slug, last_seq=last_seq, replay=[], recovered=None)
    if last_seq - since > chat_settings.CHAT_RECOVERY_MAX:
        return RoomSnapshot(slug=slug, last_seq=last_seq, replay=[], recovered=False)
    replay = message_frames_after(room=room, after=since, upto=last_seq) if since < last_seq else []
    return RoomSnapshot(slug=slug, last_seq=last_seq, replay=replay, recovered=True)
