"""Room creation quotas: nobody floods the directory by subscribing to new slugs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from chatcluster.errors import ChatError
from chatcluster.models import Room
from chatcluster.services.rooms import room_create, room_resolve

pytestmark = pytest.mark.django_db


def refusal(call: Any) -> ChatError:
    with pytest.raises(ChatError) as caught:
        call()
    return caught.value


def test_subscribing_to_new_slugs_stops_at_the_hourly_allowance(chat_conf: Any) -> None:
    chat_conf.CHAT_ROOMS_PER_USER_PER_HOUR = 3
    alice = User.objects.create_user("alice")
    for i in range(3):
        room_resolve(slug=f"new-{i}", user=alice, create=True)
    refused = refusal(lambda: room_resolve(slug="new-3", user=alice, create=True))
    assert refused.code == "rate_limited" and refused.retry_after is not None and refused.retry_after > 3000
    assert not Room.objects.filter(slug="new-3").exists()
    # Rooms that exist are still open to her, and the hour passes.
    assert room_resolve(slug="new-0", user=alice, create=True).slug == "new-0"
    Room.objects.filter(created_by=alice).update(created_at=timezone.now() - timedelta(hours=2))
    assert room_resolve(slug="new-3", user=alice, create=True).slug == "new-3"


def test_the_form_stops_at_the_total_allowance_and_staff_are_exempt(chat_conf: Any) -> None:
    chat_conf.CHAT_ROOMS_PER_USER = 2
    bob = User.objects.create_user("bob")
    for i in range(2):
        room_create(slug=f"b-{i}", title="", is_private=False, creator=bob)
    refused = refusal(lambda: room_create(slug="b-2", title="", is_private=True, creator=bob))
    assert (refused.code, refused.detail) == ("forbidden", "you have created 2 rooms, the most one person may")
    boss = User.objects.create_user("boss", is_staff=True)
    for i in range(3):
        room_create(slug=f"s-{i}", title="", is_private=False, creator=boss)


def test_zero_turns_a_limit_off(chat_conf: Any) -> None:
    chat_conf.CHAT_ROOMS_PER_USER, chat_conf.CHAT_ROOMS_PER_USER_PER_HOUR = 0, 0
    carol = User.objects.create_user("carol")
    for i in range(40):
        room_resolve(slug=f"c-{i}", user=carol, create=True)
