from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from chatcluster.errors import ChatError
from chatcluster.models import Room
from chatcluster.services.messages import message_publish
from chatcluster.services.subscriptions import subscription_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice")


def test_subscribing_creates_a_public_room(alice: User) -> None:
    snapshot = subscription_snapshot(slug="fresh", user=alice, since=None)
    assert snapshot.last_seq == 0 and snapshot.recovered is None
    assert not Room.objects.get(slug="fresh").is_private


@override_settings(CHATCLUSTER=dict(CHAT_AUTO_CREATE_ROOMS=False))
def test_without_auto_create_a_missing_room_is_not_found(alice: User) -> None:
    with pytest.raises(ChatError) as caught:
        subscription_snapshot(slug="fresh", user=alice, since=None)
    assert caught.value.code == "not_found"


def test_since_replays_exactly_the_missed_messages(alice: User) -> None:
    for i in range(5):
        message_publish(slug="r", author=alice, body=f"m{i}")
    snapshot = subscription_snapshot(slug="r", user=alice, since=2)
    assert [json.loads(f)["seq"] for f in snapshot.replay] == [3, 4, 5]
    assert snapshot.recovered is True and snapshot.last_seq == 5


@override_settings(CHATCLUSTER=dict(CHAT_RECOVERY_MAX=3))
def test_missing_more_than_the_recovery_window_is_not_recovered(alice: User) -> None:
    for i in range(5):
        message_publish(slug="r", author=alice, body=f"m{i}")
    snapshot = subscription_snapshot(slug="r", user=alice, since=1)
    assert snapshot.recovered is False and snapshot.replay == []


def test_since_past_the_last_seq_is_bad_request(alice: User) -> None:
    message_publish(slug="r", author=alice, body="m")
    with pytest.raises(ChatError) as caught:
        subscription_snapshot(slug="r", user=alice, since=99)
    assert caught.value.code == "bad_request"


def test_a_subscribe_reads_the_room_once_and_a_recovery_adds_one_read(
    alice: User, django_assert_num_queries: Any
) -> None:
    for i in range(3):
        message_publish(slug="cheap", author=alice, body=f"m{i}")
    with django_assert_num_queries(1):
        assert subscription_snapshot(slug="cheap", user=alice, since=None).last_seq == 3
    with django_assert_num_queries(2):
        assert len(subscription_snapshot(slug="cheap", user=alice, since=1).replay) == 2
    # Caught up already: nothing to replay, nothing more to read.
    with django_assert_num_queries(1):
        assert subscription_snapshot(slug="cheap", user=alice, since=3).replay == []
