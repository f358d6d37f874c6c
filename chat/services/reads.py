"""Read markers: how far each user has read each room, so unread counts survive reloads and devices."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models.functions import Greatest

from chatcluster.errors import ChatError
from chatcluster.models import ReadMarker, Room
from chatcluster.services.rooms import room_resolve


def read_mark(*, slug: str, user: User, seq: int) -> int:
    """Record that `user` has read `slug` up to `seq`; returns the marker, which never moves back.

    Tabs and devices report out of order, so a smaller `seq` than the stored one is kept
    as a no-op rather than an error. A `seq` past the room's last message is refused.
    """
    room = room_resolve(slug=slug, user=user)
    if seq < 0 or seq > room.last_seq:
        raise ChatError("bad_request", f"seq must lie between 0 and {room.last_seq}")
    updated = ReadMarker.objects.filter(room=room, user=user).update(last_read_seq=Greatest("last_read_seq", seq))
    if not updated:
        try:
            with transaction.atomic():
                ReadMarker.objects.create(room=room, user=user, last_read_seq=seq)
        except IntegrityError:  # the user's other tab created it at the same moment
            ReadMarker.objects.filter(room=room, user=user).update(last_read_seq=Greatest("last_read_seq", seq))
    return int(ReadMarker.objects.values_list("last_read_seq", flat=True).get(room=room, user=user))


def read_markers(*, user: User, rooms: Sequence[Room]) -> dict[int, int]:
    """room id -> last read seq, for the rooms `user` has a marker in."""
    found = ReadMarker.objects.filter(user=user, room__in=rooms).values_list("room_id", "last_read_seq")
    return {room_id: int(seq) for room_id, seq in found}
