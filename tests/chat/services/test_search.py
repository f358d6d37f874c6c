"""Search across the rooms a user may read: FTS5 on SQLite, a GIN index on PostgreSQL."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatcluster.errors import ChatError
from chatcluster.models import Membership, Room
from chatcluster.services.messages import message_publish
from chatcluster.services.search import message_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann() -> User:
    return User.objects.create_user("ann")


def found(user: User, query: str, **kwargs: object) -> list[tuple[str, int, str]]:
    return [(m["room"], m["seq"], m["body"]) for m in message_search(user=user, query=query, **kwargs)]  # type: ignore[arg-type]


def test_every_word_must_appear_and_the_newest_comes_first(ann: User) -> None:
    for body in ["deploy the release tonight", "the release is out", "deploy failed", "Release notes: DEPLOY"]:
        message_publish(slug="ops", author=ann, body=body)
    assert found(ann, "deploy release") == [
        ("ops", 4, "Release notes: DEPLOY"),
        ("ops", 1, "deploy the release tonight"),
    ]
    assert found(ann, "deploy", limit=2) == [("ops", 4, "Release notes: DEPLOY"), ("ops", 3, "deploy failed")]


def test_only_rooms_the_user_may_read_are_searched(ann: User) -> None:
    bob = User.objects.create_user("bob")
    secret = Room.objects.create(slug="secret", title="s", is_private=True)
    Membership.objects.create(room=secret, user=bob)
    message_publish(slug="secret", author=bob, body="the launch code")
    message_publish(slug="lobby", author=bob, body="the launch party")
    assert found(ann, "launch") == [("lobby", 1, "the launch party")]
    assert {m[0] for m in found(bob, "launch")} == {"secret", "lobby"}
    assert found(bob, "launch", room="secret") == [("secret", 1, "the launch code")]
    with pytest.raises(ChatError) as caught:
        message_search(user=ann, query="launch", room="secret")
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize("query", ['"', "AND OR NOT", "NEAR(a b)", "body:x", "a*", "^x", "-- ;DROP"])
def test_the_query_language_never_reaches_the_user(ann: User, query: str) -> None:
    message_publish(slug="r", author=ann, body="plain words")
    assert isinstance(found(ann, query), list)


@pytest.mark.parametrize("query", ["", "   ", "x" * 201])
def test_an_empty_or_overlong_query_is_bad_request(ann: User, query: str) -> None:
    with pytest.raises(ChatError) as caught:
        message_search(user=ann, query=query)
    assert caught.value.code == "bad_request"
