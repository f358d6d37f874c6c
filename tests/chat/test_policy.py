"""CHAT_POLICY: the host decides who may read, publish in or create a room."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured

from chatcluster.errors import ChatError
from chatcluster.models import Room
from chatcluster.policy import MembershipPolicy, room_policy
from chatcluster.services.access import access_review
from chatcluster.services.history import message_history
from chatcluster.services.messages import PublishRequest, message_publish, message_publish_batch
from chatcluster.services.rooms import room_create, room_visible_to
from chatcluster.services.subscriptions import subscription_snapshot

pytestmark = pytest.mark.django_db


class ReadOnlyAnnouncements(MembershipPolicy):
    """A host's rules: staff alone speak in #announcements; nobody reads #vault; no room names starting x-."""

    def can_read(self, *, user: Any, room: Room) -> bool:
        return room.slug != "vault" and super().can_read(user=user, room=room)

    def can_publish(self, *, user: Any, room: Room) -> bool:
        return room.slug != "announcements" or user.is_staff

    def can_create(self, *, user: Any, slug: str, is_private: bool) -> bool:
        return not slug.startswith("x-")

    def readable_rooms(self, *, user: Any) -> Any:
        return super().readable_rooms(user=user).exclude(slug="vault")


@pytest.fixture
def host_policy(chat_conf: Any) -> None:
    chat_conf.CHAT_POLICY = "tests.chat.test_policy.ReadOnlyAnnouncements"


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice")


def refusal(call: Any) -> str:
    with pytest.raises(ChatError) as caught:
        call()
    return f"{caught.value.code}: {caught.value.detail}"


def test_the_default_policy_is_membership() -> None:
    assert type(room_policy()) is MembershipPolicy


def test_a_policy_that_cannot_be_imported_is_refused_by_name(chat_conf: Any) -> None:
    chat_conf.CHAT_POLICY = "nowhere.Policy"
    with pytest.raises(ImproperlyConfigured, match=re.escape("CHAT_POLICY='nowhere.Policy'")):
        room_policy()


def test_a_room_the_policy_hides_can_be_neither_subscribed_nor_read(host_policy: None, alice: User) -> None:
    Room.objects.create(slug="vault", title="vault")
    assert (
        refusal(lambda: subscription_snapshot(slug="vault", user=alice, since=None))
        == "forbidden: room vault is private"
    )
    assert refusal(lambda: message_history(slug="vault", user=alice, before=None, limit=10)).startswith("forbidden")
    assert "vault" not in {room.slug for room in room_visible_to(user=alice)}


def test_a_publish_the_policy_refuses_is_not_stored_on_either_path(host_policy: None, alice: User) -> None:
    Room.objects.create(slug="announcements", title="news")
    assert refusal(lambda: message_publish(slug="announcements", author=alice, body="hi")) == (
        "forbidden: you may not publish in announcements"
    )
    (outcome,) = message_publish_batch(requests=[PublishRequest(slug="announcements", author=alice, body="hi")])
    assert isinstance(outcome, ChatError) and outcome.code == "forbidden"
    staff = User.objects.create_user("boss", is_staff=True)
    assert message_publish(slug="announcements", author=staff, body="hello").seq == 1
    assert Room.objects.get(slug="announcements").messages.count() == 1


def test_room_creation_asks_the_policy_by_subscribe_and_by_form(host_policy: None, alice: User) -> None:
    assert refusal(lambda: subscription_snapshot(slug="x-spam", user=alice, since=None)) == (
        "forbidden: you may not create room x-spam"
    )
    assert refusal(lambda: room_create(slug="x-form", title="", is_private=False, creator=alice)).startswith(
        "forbidden"
    )
    assert not Room.objects.filter(slug__startswith="x-").exists()


def test_the_access_review_ends_subscriptions_the_policy_no_longer_allows(host_policy: None, alice: User) -> None:
    Room.objects.create(slug="vault", title="vault")
    Room.objects.create(slug="lobby", title="lobby")
    review = access_review(grants=[], subscriptions=[("c1", alice.pk, "vault"), ("c1", alice.pk, "lobby")])
    assert review.evicted == [("c1", "vault")]
