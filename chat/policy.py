"""Who may read, publish in or create a room: the host decides, through CHAT_POLICY.

CHAT_POLICY names a class with the methods of `RoomPolicy`. The app asks it on every
subscribe, history read and publish, when a room is created, and again in each node's
access review (every CHAT_ACCESS_RECHECK seconds), so a "no" that starts later also ends
open subscriptions. Its methods run in a worker thread and may use the ORM.

    class StaffOnlyAnnouncements(MembershipPolicy):
        def can_publish(self, *, user, room):
            return room.slug != "announcements" or user.is_staff
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models import Q, QuerySet
from django.utils.module_loading import import_string

from chatcluster.conf import NAMESPACE, chat_settings
from chatcluster.models import Membership, Room


class RoomPolicy(Protocol):
    def can_read(self, *, user: Any, room: Room) -> bool:
        """May `user` subscribe to `room` and read its history?"""

    def can_publish(self, *, user: Any, room: Room) -> bool:
        """May `user`, who can read `room`, publish in it?"""

    def can_create(self, *, user: Any, slug: str, is_private: bool) -> bool:
        """May `user` create a room named `slug`?"""

    def readable_rooms(self, *, user: Any) -> QuerySet[Room]:
        """The rooms `user` can read, for the room list."""


class MembershipPolicy:
    """The default: public rooms are open to every signed-in user, private ones to their members."""

    def can_read(self, *, user: Any, room: Room) -> bool:
        return not room.is_private or Membership.objects.filter(room=room, user=user).exists()

    def can_publish(self, *, user: Any, room: Room) -> bool:
        return True

    def can_create(self, *, user: Any, slug: str, is_private: bool) -> bool:
        return True

    def readable_rooms(self, *, user: Any) -> QuerySet[Room]:
        return Room.objects.filter(Q(is_private=False) | Q(memberships__user=user)).distinct()


_policy: RoomPolicy | None = None


def room_policy() -> RoomPolicy:
    """The policy CHAT_POLICY names, made once per process."""
    global _policy
    if _policy is None:
        path = chat_settings.CHAT_POLICY
        try:
            _policy = import_string(path)()
        except ImportError as exc:
            raise ImproperlyConfigured(f"CHAT_POLICY={path!r} cannot be imported: {exc}") from exc
    return _policy


def policy_is_default() -> bool:
    """True for MembershipPolicy itself, whose checks the hot paths do in bulk SQL instead."""
    return type(room_policy()) is MembershipPolicy


def _forget_policy(*, setting: str, **kwargs: object) -> None:
    global _policy
    if setting == NAMESPACE:
        _policy = None


setting_changed.connect(_forget_policy)
