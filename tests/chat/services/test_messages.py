from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from chatcluster.errors import ChatError
from chatcluster.models import Membership, Message, Room
from chatcluster.services.history import message_history
from chatcluster.services.messages import (
    PostedMessage,
    PublishRequest,
    message_clean_body,
    message_publish,
    message_publish_batch,
)

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


@override_settings(CHATCLUSTER=dict(CHAT_MAX_BODY=5))
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


@override_settings(CHATCLUSTER=dict(CHAT_HISTORY_MAX=4))
def test_history_limit_is_capped(alice: User) -> None:
    for i in range(6):
        message_publish(slug="a", author=alice, body=f"m{i}")
    assert len(message_history(slug="a", user=alice, before=None, limit=100)) == 4


def test_a_batch_stores_each_room_in_order_with_gapless_seqs(alice: User) -> None:
    message_publish(slug="a", author=alice, body="before")
    requests = [PublishRequest(slug=slug, author=alice, body=f"{slug}{i}") for i, slug in enumerate("abab")]
    outcomes = message_publish_batch(requests=requests)
    assert [(o.room, o.seq) for o in outcomes if isinstance(o, PostedMessage)] == [
        ("a", 2),
        ("b", 1),
        ("a", 3),
        ("b", 2),
    ]
    assert list(Message.objects.filter(room__slug="a").order_by("seq").values_list("body", flat=True)) == [
        "before",
        "a0",
        "a2",
    ]
    assert Room.objects.get(slug="a").last_seq == 3


def test_a_refused_request_fails_alone_in_its_batch(alice: User) -> None:
    bob = User.objects.create_user("bob")
    secret = Room.objects.create(slug="secret", is_private=True)
    Membership.objects.create(room=secret, user=bob)
    outcomes = message_publish_batch(
        requests=[
            PublishRequest(slug="a", author=alice, body="ok"),
            PublishRequest(slug="a", author=alice, body="   "),
            PublishRequest(slug="secret", author=alice, body="in"),
            PublishRequest(slug="secret", author=bob, body="member"),
            PublishRequest(slug="Bad Slug!", author=alice, body="x"),
        ]
    )
    codes = [o.code if isinstance(o, ChatError) else o.seq for o in outcomes]
    assert codes == [1, "bad_request", "forbidden", 1, "bad_request"]


def test_a_key_repeated_within_a_batch_or_stored_before_is_stored_once(alice: User) -> None:
    earlier = message_publish(slug="a", author=alice, body="once", key="k0")
    outcomes = message_publish_batch(
        requests=[
            PublishRequest(slug="a", author=alice, body="retry", key="k0"),
            PublishRequest(slug="a", author=alice, body="new", key="k1"),
            PublishRequest(slug="a", author=alice, body="new", key="k1"),
        ]
    )
    posted = [o for o in outcomes if isinstance(o, PostedMessage)]
    assert [(p.seq, p.created) for p in posted] == [(earlier.seq, False), (2, True), (2, False)]
    assert Message.objects.filter(room__slug="a").count() == 2
