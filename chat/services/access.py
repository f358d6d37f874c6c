"""Whether open sockets may stay open: the database's answer, checked again and again.

A socket is authenticated once, at connect. After that its user may log out, be
deactivated, change password, or be removed from a private room. The hub applies those
at once when their broadcast arrives, and every node also asks this service about all
of its sockets every CHAT_ACCESS_RECHECK seconds, in case a broadcast was lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from chatcluster.models import Membership, Room, Sanction
from chatcluster.policy import policy_is_default, room_policy


@dataclass(frozen=True, slots=True)
class Grant:
    """What a socket was let in on."""

    conn: str
    user_id: int
    auth_hash: str
    # The session that authenticated a cookie socket; None for a token socket.
    session_key: str | None


@dataclass
class AccessReview:
    # Sockets whose user or session no longer grants access: close them with 4401.
    revoked: set[str] = field(default_factory=set)
    # (conn, room) subscriptions their user may no longer hold: removed from a private room, or banned.
    evicted: list[tuple[str, str]] = field(default_factory=list)


def access_auth_hash(*, user: object) -> str:
    """A short digest of the user's password hash: a password change changes it.

    Django's session auth hash would do, but it is an HMAC per socket per review; this is
    a plain digest of the stored hash, which already holds a salt and many rounds.
    """
    return _password_digest(str(user.password))  # type: ignore[attr-defined]


def _password_digest(password: str) -> str:
    return hashlib.blake2b(password.encode(), digest_size=12).hexdigest()


def _active_passwords(user_ids: set[int]) -> list[tuple[int, str]]:
    """(id, password hash) of the active users among `user_ids`, in plain SQL.

    A queryset's `pk__in` of thousands of ids spends most of the review preparing each
    id; the driver takes them as they are.
    """
    model = get_user_model()
    meta = model._meta
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    active = [field.column for field in meta.concrete_fields if field.attname == "is_active"]
    condition = f" AND {connection.ops.quote_name(active[0])}" if active else ""
    rows: list[tuple[int, str]] = []
    ids = sorted(user_ids)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT {pk}, password FROM {table} WHERE {pk} IN ({marks}){condition}", chunk)
            rows += cursor.fetchall()
    return rows


# Ids per IN list: SQLite takes at most 32,766 parameters per statement.
_IN_CHUNK = 10_000


def _live_sessions(keys: set[str]) -> set[str]:
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        live = Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        return set(live.values_list("session_key", flat=True))
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store().exists(key)}


def access_review(*, grants: list[Grant], subscriptions: list[tuple[str, int, str]]) -> AccessReview:
    """Check `grants` and (conn, user id, room) `subscriptions` against the database."""
    review = AccessReview()
    # Only what the check needs, one digest per user however many sockets: a node's idle
    # sockets cost it this review every CHAT_ACCESS_RECHECK seconds.
    digests = {pk: _password_digest(password) for pk, password in _active_passwords({g.user_id for g in grants})}
    live_sessions = _live_sessions({g.session_key for g in grants if g.session_key})
    for grant in grants:
        if digests.get(grant.user_id) != grant.auth_hash or (
            grant.session_key is not None and grant.session_key not in live_sessions
        ):
            review.revoked.add(grant.conn)
    if not policy_is_default():
        review.evicted = _unreadable(subscriptions) + _banned(subscriptions)
        return review
    private = set(
        Room.objects.filter(slug__in={room for _, _, room in subscriptions}, is_private=True).values_list(
            "slug", flat=True
        )
    )
    watched = [(conn, user_id, room) for conn, user_id, room in subscriptions if room in private]
    members = set(
        Membership.objects.filter(
            room__slug__in={room for _, _, room in watched}, user_id__in={user_id for _, user_id, _ in watched}
        ).values_list("room__slug", "user_id")
    )
    review.evicted = [(conn, room) for conn, user_id, room in watched if (room, user_id) not in members]
    review.evicted += _banned(subscriptions)
    return review


def _banned(subscriptions: list[tuple[str, int, str]]) -> list[tuple[str, str]]:
    """(conn, room) of the subscriptions whose user is banned from the room."""
    if not subscriptions:
        return []
    bans = set(
        Sanction.objects.filter(
            kind=Sanction.Kind.BAN,
            room__slug__in={room for _, _, room in subscriptions},
            user_id__in={user_id for _, user_id, _ in subscriptions},
        ).values_list("room__slug", "user_id")
    )
    return [(conn, room) for conn, user_id, room in subscriptions if (room, user_id) in bans]


def _unreadable(subscriptions: list[tuple[str, int, str]]) -> list[tuple[str, str]]:
    """(conn, room) of the subscriptions a host's own policy no longer lets their user read."""
    policy = room_policy()
    rooms = Room.objects.in_bulk({room for _, _, room in subscriptions}, field_name="slug")
    users = get_user_model().objects.in_bulk({user_id for _, user_id, _ in subscriptions})
    verdicts: dict[tuple[int, str], bool] = {}
    evicted = []
    for conn, user_id, slug in subscriptions:
        if (user_id, slug) not in verdicts:
            room, user = rooms.get(slug), users.get(user_id)
            verdicts[user_id, slug] = room is not None and user is not None and policy.can_read(user=user, room=room)
        if not verdicts[user_id, slug]:
            evicted.append((conn, slug))
    return evicted
