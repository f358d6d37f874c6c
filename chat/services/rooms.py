"""Rooms: who may see them, creating them, and the state a subscriber starts from."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.models import SLUG_PATTERN, Membership, Room, Sanction
from chatcluster.policy import room_policy
from chatcluster.services.moderation import sanction_refusal


def room_visible_to(*, user: User) -> QuerySet[Room]:
    return room_policy().readable_rooms(user=user)


def room_page(*, user: User, after: str, limit: int) -> tuple[list[Room], str | None]:
    """Up to `limit` rooms `user` may read, by slug after `after`, and the cursor of the next page.

    The cursor is the last slug of this page (None on the last page): a room created or
    removed meanwhile shifts nothing, as an offset would.
    """
    rooms = room_visible_to(user=user).order_by("slug")
    if after:
        rooms = rooms.filter(slug__gt=after)
    page = list(rooms[: limit + 1])
    if len(page) > limit:
        return page[:limit], page[limit - 1].slug
    return page, None


def room_check_slug(*, slug: str) -> None:
    if not re.match(SLUG_PATTERN, slug):
        raise ChatError("bad_request", "a room name is 1 to 64 characters of a-z 0-9 - _")


def room_resolve(*, slug: str, user: User, create: bool = False, publish: bool = False) -> Room:
    """The room `slug` if `user` may read it (and publish in it), creating a public one when allowed."""
    room_check_slug(slug=slug)
    # Every subscribe comes here: plain SQL costs a fifth of a compiled queryset. The same
    # statement finds the user's sanctions in the room, so a ban costs no extra round trip.
    rooms, sanctions = (connection.ops.quote_name(m._meta.db_table) for m in (Room, Sanction))
    # The kinds of the user's sanctions in the room, comma-separated, in one column.
    kinds = "string_agg(s.kind, ',')" if connection.vendor == "postgresql" else "group_concat(s.kind, ',')"
    found = list(
        Room.objects.raw(
            f"SELECT r.*, (SELECT {kinds} FROM {sanctions} s WHERE s.room_id = r.id AND s.user_id = %s)"
            f" AS held_sanctions FROM {rooms} r WHERE r.slug = %s",
            [user.pk, slug],
        )
    )
    room = found[0] if found else None
    policy = room_policy()
    if room is None:
        if not (create and chat_settings.CHAT_AUTO_CREATE_ROOMS):
            raise ChatError("not_found", f"room {slug} does not exist")
        if not policy.can_create(user=user, slug=slug, is_private=False):
            raise ChatError("forbidden", f"you may not create room {slug}")
        room_check_quota(user=user)
        try:
            with transaction.atomic():
                room = Room.objects.create(slug=slug, title=slug, created_by=user)
        except IntegrityError:  # another node created it at the same moment
            room = Room.objects.get(slug=slug)
    if not policy.can_read(user=user, room=room):
        # The same answer whatever the room holds: no hint of what is inside.
        raise ChatError("forbidden", f"room {slug} is private")
    held = set(filter(None, (getattr(room, "held_sanctions", None) or "").split(",")))
    refusal = sanction_refusal(slug=slug, kinds=held, publish=publish)
    if refusal is not None:
        raise refusal
    if publish and not policy.can_publish(user=user, room=room):
        raise ChatError("forbidden", f"you may not publish in {slug}")
    return room


def room_check_quota(*, user: User) -> None:
    """Refuse a room past the user's hourly or total allowance (CHAT_ROOMS_PER_USER*)."""
    if user.is_staff:
        return
    total, hourly = chat_settings.CHAT_ROOMS_PER_USER, chat_settings.CHAT_ROOMS_PER_USER_PER_HOUR
    mine = Room.objects.filter(created_by=user)
    if total and mine.count() >= total:
        raise ChatError("forbidden", f"you have created {total} rooms, the most one person may")
    if hourly:
        hour_ago = timezone.now() - timedelta(hours=1)
        recent = sorted(mine.filter(created_at__gte=hour_ago).values_list("created_at", flat=True))
        if len(recent) >= hourly:
            wait = (recent[-hourly] - hour_ago).total_seconds()
            raise ChatError(
                "rate_limited", f"you have created {hourly} rooms in the last hour", retry_after=max(1.0, wait)
            )


def room_create(*, slug: str, title: str, is_private: bool, creator: User) -> Room:
    if not room_policy().can_create(user=creator, slug=slug, is_private=is_private):
        raise ChatError("forbidden", f"you may not create room {slug}")
    room_check_quota(user=creator)
    with transaction.atomic():
        if Room.objects.filter(slug=slug).exists():
            raise ChatError("bad_request", f"room {slug} already exists")
        room = Room.objects.create(slug=slug, title=title or slug, is_private=is_private, created_by=creator)
        Membership.objects.create(room=room, user=creator, role=Membership.Role.OWNER)
    return room
