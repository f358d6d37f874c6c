"""Mentions: `@name` in a message, stored for each named user who may read the room.

Stored, not counted on the fly in the page, so the count survives a reload and is the same
on every device; it falls as the user's read marker moves past the mentions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, F, OuterRef, Subquery

from chatcluster.conf import chat_settings
from chatcluster.models import Membership, Mention, ReadMarker, Room, Sanction
from chatcluster.policy import policy_is_default, room_policy

# Django's usernames: letters, digits and @ . + - _. Not after a word character, so an
# e-mail address mentions no one.
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")


def mention_names(*, body: str) -> list[str]:
    """The names a body mentions, first mention first, at most CHAT_MENTIONS_MAX."""
    names: list[str] = []
    for match in _MENTION.finditer(body):
        # "@bob." ends a sentence: the name is "bob" unless a user is called "bob.".
        for name in dict.fromkeys((match.group(1), match.group(1).rstrip(".-+@"))):
            if name and name not in names:
                names.append(name)
    return names[: chat_settings.CHAT_MENTIONS_MAX * 2]


def mention_record(*, room_id: int, entries: Sequence[tuple[int, int | None, str]]) -> None:
    """Store the mentions in (seq, author id, body) entries of one room, for users who may read it."""
    wanted = {seq: mention_names(body=body) for seq, _, body in entries if "@" in body}
    wanted = {seq: names for seq, names in wanted.items() if names}
    if not wanted:
        return
    model = get_user_model()
    field = model.USERNAME_FIELD
    users = {
        getattr(user, field): user
        for user in model.objects.filter(**{f"{field}__in": {n for names in wanted.values() for n in names}})
        if getattr(user, "is_active", True)
    }
    room = Room.objects.get(pk=room_id)
    readers = _readers(room, list(users.values()))
    authors = {seq: author for seq, author, _ in entries}
    rows = []
    for seq, names in wanted.items():
        named = [users[n] for n in names if n in users][: chat_settings.CHAT_MENTIONS_MAX]
        rows += [
            Mention(room_id=room_id, user_id=user.pk, seq=seq)
            for user in dict.fromkeys(named)
            if user.pk in readers and user.pk != authors[seq]
        ]
    Mention.objects.bulk_create(rows, ignore_conflicts=True)


def _readers(room: Room, users: list[object]) -> set[int]:
    ids = {user.pk for user in users}  # type: ignore[attr-defined]
    banned = set(Sanction.objects.filter(room=room, kind=Sanction.Kind.BAN).values_list("user_id", flat=True))
    if not policy_is_default():
        policy = room_policy()
        return {user.pk for user in users if user.pk not in banned and policy.can_read(user=user, room=room)}  # type: ignore[attr-defined]
    if room.is_private:
        ids &= set(Membership.objects.filter(room=room, user_id__in=ids).values_list("user_id", flat=True))
    return ids - banned


def mention_counts(*, user: User, room_ids: Sequence[int]) -> dict[int, int]:
    """room id -> mentions of `user` after their read marker in the room."""
    marker = ReadMarker.objects.filter(user=user, room_id=OuterRef("room_id")).values("last_read_seq")[:1]
    unread = (
        Mention.objects.filter(user=user, room_id__in=room_ids)
        .annotate(read=Subquery(marker))
        .filter(seq__gt=F("read"))
        .values("room_id")
        .annotate(count=Count("id"))
    )
    no_marker = (
        Mention.objects.filter(user=user, room_id__in=room_ids)
        .exclude(room_id__in=ReadMarker.objects.filter(user=user).values("room_id"))
        .values("room_id")
        .annotate(count=Count("id"))
    )
    counts: dict[int, int] = {}
    for row in [*unread, *no_marker]:
        counts[row["room_id"]] = counts.get(row["room_id"], 0) + row["count"]
    return counts
