from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from chat.errors import ChatError
from chat.models import Membership, Message, Room
from chat.services.messages import message_clean_body, message_history, message_publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice")


def test_publish_assigns_gapless_seqs_per_room(alice: User) -> None:
    seqs = [message_publish(slug="a", author=alice, body=f"m{i}").seq for i in range(3)]
    other = message_publish(slug="b", author=alice, body="x").seq
    assert seqs == [1, 2, 3]
    assert other == 1
    assert Room.objects.get(slug="a").last_seq == 3


def test_published_frame_is_the_contract_message(alice: User) -> None:
    posted = message_publish(slug="a", author=alice, body="  hello  ")
    frame = json.loads(posted.frame)
    assert frame["type"] == "message" and frame["room"] == "a" and frame["seq"] == 1
    assert frame["user"] == "alice" and frame["body"] == "hello" and frame["ts"]


def test_a_repeated_idempotency_key_returns_the_first_seq_and_stores_nothing(alice: User) -> None:
    first = message_publish(slug="a", author=alice, body="once", key="k1")
    again = message_publish(slug="a", author=alice, body="once", key="k1")
    assert (first.created, again.created) == (True, False)
    assert again.seq == first.seq
    assert Message.objects.filter(room__slug="a").count() == 1


def test_control_and_bidi_override_characters_are_removed() -> None:
    assert message_clean_body(body="a\u202eb\x07c\nd") == "abc\nd"


def test_empty_body_is_bad_request() -> None:
    with pytest.raises(ChatError) as caught:
        message_clean_body(body="   \u202e ")
    assert caught.value.code == "bad_request"


@override_settings(CHAT_MAX_BODY=5)
def test_body_over_the_limit_in_characters_is_too_large() -> None:
    assert message_clean_body(body="ééééé") == "ééééé"
    with pytest.raises(ChatError) as caught:
        message_clean_body(body="123456")
    assert caught.value.code == "too_large"


def test_private_room_refuses_non_members(alice: User) -> None:
    room = Room.objects.create(slug="secret", is_private=True)
    bob = User.objects.create_user("bob")
    Membership.objects.create(room=room, user=alice)
    assert message_publish(slug="secret", author=alice, body="hi").seq == 1
    with pytest.raises(ChatError) as caught:
        message_publish(slug="secret", author=bob, body="hi")
    assert caught.value.code == "forbidden"


def test_history_pages_backwards_oldest_first(alice: User) -> None:
    for i in range(1, 8):
        message_publish(slug="a", author=alice, body=f"m{i}")
    newest = message_history(slug="a", user=alice, before=None, limit=3)
    older = message_history(slug="a", user=alice, before=5, limit=3)
    assert [m["seq"] for m in newest] == [5, 6, 7]
    assert [m["seq"] for m in older] == [2, 3, 4]


@override_settings(CHAT_HISTORY_MAX=4)
def test_history_limit_is_capped(alice: User) -> None:
    for i in range(6):
        message_publish(slug="a", author=alice, body=f"m{i}")
    assert len(message_history(slug="a", user=alice, before=None, limit=100)) == 4
