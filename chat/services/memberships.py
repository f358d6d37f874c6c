"""Rooms a user belongs to: joining, leaving, the sidebar's list, the directory, members."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from chatcluster.errors import ChatError
from chatcluster.models import Membership, Message, ReadMarker, Room, Sanction
from chatcluster.services.mentions import mention_counts
from chatcluster.services.moderation import MODERATOR_ROLES, room_role
from chatcluster.services.reads import read_markers
from chatcluster.services.rooms import room_resolve

# Names one members or users lookup answers: an autocomplete list, not a roster.
MEMBERS_PAGE = 50
USERS_PAGE = 20


def room_join(*, slug: str, user: User) -> Membership:
    """Make `user` a member of `slug` (created as a public room if missing); a repeat changes nothing."""
    room = room_resolve(slug=slug, user=user, create=True)
    creator = room.created_by_id == user.pk and not room.memberships.exists()
    role = Membership.Role.OWNER if creator else Membership.Role.MEMBER
    try:
        with transaction.atomic():
            membership, made = Membership.objects.get_or_create(room=room, user=user, defaults={"role": role})
    except IntegrityError:  # the user's other tab joined at the same moment
        membership, made = Membership.objects.get(room=room, user=user), False
    if made:
        # Joining is seeing the room as it is now: its past is not unread.
        ReadMarker.objects.get_or_create(room=room, user=user, defaults={"last_read_seq": room.last_seq})
    return membership


def room_leave(*, slug: str, user: User) -> None:
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        raise ChatError("not_found", f"room {slug} does not exist")
    if room.is_direct:
        raise ChatError("bad_request", "a direct conversation is not left; it stays for its people")
    membership = Membership.objects.filter(room=room, user=user).first()
    if membership is None:
        return
    if room.is_private and membership.role == Membership.Role.OWNER:
        owners = Membership.objects.filter(room=room, role=Membership.Role.OWNER).count()
        if owners == 1:
            raise ChatError("bad_request", f"you are the only owner of {slug}: make another owner first")
    membership.delete()


def room_joined(*, user: User) -> list[dict[str, Any]]:
    """The sidebar: the user's rooms and DMs, with unread and mention counts."""
    memberships = list(
        Membership.objects.filter(user=user).select_related("room").order_by("room__is_direct", "room__slug")
    )
    rooms = [m.room for m in memberships]
    ids = [room.pk for room in rooms]
    read = read_markers(user=user, rooms=rooms)
    mentions = mention_counts(user=user, room_ids=ids)
    unread = _unread_counts(user=user, read=read, rooms=rooms)
    direct = [room.pk for room in rooms if room.is_direct]
    name = f"user__{get_user_model().USERNAME_FIELD}"
    people: dict[int, list[str]] = {}
    for room_id, other in (
        Membership.objects.filter(room_id__in=direct).exclude(user=user).order_by(name).values_list("room_id", name)
    ):
        people.setdefault(room_id, []).append(other)
    return [
        {
            "slug": m.room.slug,
            "title": m.room.title,
            "private": m.room.is_private,
            "direct": m.room.is_direct,
            "seq": m.room.last_seq,
            "read": read.get(m.room.pk),
            "unread": unread.get(m.room.pk, 0),
            "mentions": mentions.get(m.room.pk, 0),
            "role": m.role,
            "people": people.get(m.room.pk, []),
        }
        for m in memberships
    ]


# Seqs an unread count looks back at most: past it, "many" is all a badge needs to say.
UNREAD_LOOKBACK = 1000


def _unread_counts(*, user: User, read: dict[int, int], rooms: list[Room]) -> dict[int, int]:
    """Messages by others after the read marker (from the start without one: a DM someone began)."""
    behind = Q()
    for room in rooms:
        since = max(read.get(room.pk, 0), room.last_seq - UNREAD_LOOKBACK)
        if since < room.last_seq:
            behind |= Q(room_id=room.pk, seq__gt=since)
    if not behind:
        return {}
    rows = (
        Message.objects.filter(behind, kind=Message.Kind.MESSAGE, deleted=False)
        .exclude(author=user)
        .values("room_id")
        .annotate(count=Count("id"))
    )
    return {row["room_id"]: row["count"] for row in rows}


def room_directory(*, user: User, query: str, after: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of public rooms whose slug or title contains `query`, by slug."""
    rooms = Room.objects.filter(is_private=False).order_by("slug")
    if query:
        rooms = rooms.filter(Q(slug__icontains=query) | Q(title__icontains=query))
    if after:
        rooms = rooms.filter(slug__gt=after)
    page = list(rooms.annotate(member_count=Count("memberships"))[: limit + 1])
    cursor = page[limit - 1].slug if len(page) > limit else None
    page = page[:limit]
    joined = set(Membership.objects.filter(user=user, room__in=page).values_list("room_id", flat=True))
    read = read_markers(user=user, rooms=page)
    listed = [
        {
            "slug": room.slug,
            "title": room.title,
            "private": False,
            "seq": room.last_seq,
            "read": read.get(room.pk),
            "joined": room.pk in joined,
            "members": room.member_count,
        }
        for room in page
    ]
    return listed, cursor


def room_members(*, slug: str, user: User, prefix: str) -> dict[str, Any]:
    room = room_resolve(slug=slug, user=user)
    name = f"user__{get_user_model().USERNAME_FIELD}"
    members = (
        Membership.objects.filter(room=room, **{f"{name}__istartswith": prefix})
        .order_by(name)
        .values_list(name, "role")[:MEMBERS_PAGE]
    )
    role = room_role(room=room, user=user)
    moderator = bool(user.is_staff) or role in MODERATOR_ROLES
    answer: dict[str, Any] = {
        "members": [{"username": member, "role": member_role} for member, member_role in members],
        "me": {"role": role, "moderator": moderator},
        "slow_seconds": room.slow_seconds,
    }
    if moderator:
        # Who is banned or muted, for the moderation menu (unban, unmute): moderators only.
        held = Sanction.objects.filter(room=room).order_by(name).values_list("kind", name)
        answer["banned"] = [who for kind, who in held if kind == Sanction.Kind.BAN]
        answer["muted"] = [who for kind, who in held if kind == Sanction.Kind.MUTE]
    return answer


def user_search(*, prefix: str) -> list[dict[str, str]]:
    model = get_user_model()
    field = model.USERNAME_FIELD
    found = model.objects.filter(**{f"{field}__istartswith": prefix})
    if any(f.name == "is_active" for f in model._meta.fields):
        found = found.filter(is_active=True)
    names = found.order_by(field).values_list(field, flat=True)[:USERS_PAGE]
    return [{"username": name} for name in names]
