"""Moderation: room roles, kicks, bans, mutes and slow mode, and their log.

The database holds every sanction, so each node's publish path and access review see a
ban or a mute at once. The eviction broadcast only makes a ban or a kick take effect on
open sockets without waiting for the next review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max

from chatcluster import broadcast
from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.models import Membership, Message, ModerationAction, Room, Sanction

MODERATOR_ROLES = (Membership.Role.OWNER, Membership.Role.MODERATOR)
ACTIONS = ("kick", "ban", "unban", "mute", "unmute", "slow", "role")


@dataclass(frozen=True)
class Moderation:
    action: str
    user: str | None = None
    seconds: int | None = None
    role: str | None = None


def room_role(*, room: Room, user: User) -> str | None:
    """The user's role in the room, None for someone who is not a member."""
    found = Membership.objects.filter(room=room, user_id=user.pk).values_list("role", flat=True).first()
    return str(found) if found is not None else None


def room_can_moderate(*, room: Room, user: User) -> bool:
    return bool(user.is_staff) or room_role(room=room, user=user) in MODERATOR_ROLES


def moderators_among(*, room_ids: Iterable[int], user_ids: Iterable[int]) -> set[tuple[int, int]]:
    """(room id, user id) pairs whose user moderates the room (staff not included)."""
    return set(
        Membership.objects.filter(room_id__in=set(room_ids), user_id__in=set(user_ids), role__in=MODERATOR_ROLES)
        .values_list("room_id", "user_id")
        .distinct()
    )


def sanctions_among(*, room_ids: Iterable[int], user_ids: Iterable[int]) -> dict[tuple[int, int], set[str]]:
    """(room id, user id) -> the kinds of sanction ("ban", "mute") in force."""
    found: dict[tuple[int, int], set[str]] = {}
    rows = Sanction.objects.filter(room_id__in=set(room_ids), user_id__in=set(user_ids)).values_list(
        "room_id", "user_id", "kind"
    )
    for room_id, user_id, kind in rows:
        found.setdefault((room_id, user_id), set()).add(kind)
    return found


def sanction_refusal(*, slug: str, kinds: set[str], publish: bool) -> ChatError | None:
    if "ban" in kinds:
        return ChatError("forbidden", f"you are banned from {slug}")
    if publish and "mute" in kinds:
        return ChatError("forbidden", f"you are muted in {slug}")
    return None


def slow_mode_wait(*, room_id: int, user_id: int, seconds: int, now: datetime) -> float:
    """Seconds the user must still wait before their next message in a slow room; 0 when free."""
    last = Message.objects.filter(room_id=room_id, author_id=user_id, kind=Message.Kind.MESSAGE).aggregate(
        last=Max("created_at")
    )["last"]
    if last is None:
        return 0.0
    return max(0.0, seconds - (now - last).total_seconds())


def room_moderate(*, room: Room, actor: User, moderation: Moderation) -> dict[str, object]:
    """Apply `moderation` in `room` on `actor`'s authority; returns the API's answer."""
    if moderation.action not in ACTIONS:
        raise ChatError("bad_request", f"action must be one of {', '.join(ACTIONS)}")
    actor_role = room_role(room=room, user=actor)
    if not (actor.is_staff or actor_role in MODERATOR_ROLES):
        raise ChatError("forbidden", f"only the owner and moderators of {room.slug} moderate it")
    answer: dict[str, object] = {"room": room.slug, "action": moderation.action}
    if moderation.action == "slow":
        seconds = moderation.seconds
        if seconds is None or not 0 <= seconds <= chat_settings.CHAT_SLOW_MAX:
            raise ChatError("bad_request", f"seconds must lie between 0 and {chat_settings.CHAT_SLOW_MAX}")
        with transaction.atomic():
            Room.objects.filter(pk=room.pk).update(slow_seconds=seconds)
            _log(room=room, actor=actor, action="slow", detail=str(seconds))
        return {**answer, "seconds": seconds}
    target = _target_user(moderation.user)
    target_role = room_role(room=room, user=target)
    if target.pk == actor.pk:
        raise ChatError("forbidden", "you cannot moderate yourself")
    if target.is_staff or target_role == Membership.Role.OWNER:
        raise ChatError("forbidden", f"{target.get_username()} is the room's owner or staff")
    if target_role == Membership.Role.MODERATOR and not (actor.is_staff or actor_role == Membership.Role.OWNER):
        raise ChatError("forbidden", "only the owner moderates a moderator")
    with transaction.atomic():
        if moderation.action in ("kick", "ban"):
            # Sent after the commit, so a node that re-checks finds the ban; registered
            # first, so it goes out before the membership's own "removed" eviction.
            reason = "banned" if moderation.action == "ban" else "kicked"
            broadcast.after_commit(broadcast.publish_evict, target.pk, room.slug, reason)
        _apply(room=room, actor=actor, target=target, moderation=moderation, actor_role=actor_role)
        _log(room=room, actor=actor, action=moderation.action, target=target, detail=moderation.role or "")
    return {**answer, "user": target.get_username()}


def _apply(*, room: Room, actor: User, target: User, moderation: Moderation, actor_role: str | None) -> None:
    action = moderation.action
    if action in ("ban", "mute"):
        try:
            with transaction.atomic():
                Sanction.objects.create(room=room, user=target, kind=action, by=actor)
        except IntegrityError:
            pass  # already in force: a repeat changes nothing
    elif action in ("unban", "unmute"):
        Sanction.objects.filter(room=room, user=target, kind=action.removeprefix("un")).delete()
    if action in ("kick", "ban") and not (room.is_direct):
        # The membership's deletion sends the eviction itself (receivers.py); so does the
        # explicit broadcast after commit, for a public room's non-member subscribers.
        Membership.objects.filter(room=room, user=target).delete()
    if action == "role":
        if not (actor.is_staff or actor_role == Membership.Role.OWNER):
            raise ChatError("forbidden", "only the owner gives or takes the moderator role")
        if moderation.role not in (Membership.Role.MODERATOR, Membership.Role.MEMBER):
            raise ChatError("bad_request", "role must be moderator or member")
        updated = Membership.objects.filter(room=room, user=target).update(role=moderation.role)
        if not updated:
            raise ChatError("bad_request", f"{target.get_username()} is not a member of {room.slug}")


def _target_user(username: str | None) -> User:
    if not username:
        raise ChatError("bad_request", "user is required")
    model = get_user_model()
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        raise ChatError("not_found", f"no such user: {username}")
    return user


def _log(*, room: Room, actor: User, action: str, target: User | None = None, detail: str = "") -> None:
    ModerationAction.objects.create(
        room=room,
        actor=actor,
        actor_name=actor.get_username(),
        action=action,
        target_name=target.get_username() if target is not None else "",
        detail=detail,
    )


def moderation_log_delete(*, room: Room, actor: User, author_name: str, seq: int) -> None:
    """A moderator's deletion of someone else's message, in the moderation log."""
    ModerationAction.objects.create(
        room=room,
        actor=actor,
        actor_name=actor.get_username(),
        action=ModerationAction.Action.DELETE,
        target_name=author_name,
        detail=f"#{seq}",
    )
