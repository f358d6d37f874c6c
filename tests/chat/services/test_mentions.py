"""Mentions: which names a body mentions, and who gets a stored mention."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatcluster.models import Membership, Mention, Room, Sanction
from chatcluster.services.mentions import mention_names
from chatcluster.services.messages import message_create


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("hi @bob", ["bob"]),
        ("@bob, @ann.", ["bob", "ann.", "ann"]),
        ("mail bob@example.com", []),
        ("@a.b-c_d+e", ["a.b-c_d+e"]),
        ("no mention @", []),
    ],
)
def test_mention_names(body: str, names: list[str]) -> None:
    assert mention_names(body=body) == names


@pytest.mark.django_db
def test_only_readers_other_than_the_author_are_mentioned() -> None:
    ann, _bob, cat, dan = (User.objects.create_user(n) for n in ("ann", "bob", "cat", "dan"))
    User.objects.filter(pk=dan.pk).update(is_active=False)
    public = Room.objects.create(slug="public")
    Sanction.objects.create(room=public, user=cat, kind="ban")
    message_create(room=public, author=ann, body="@ann @bob @cat @dan @ghost")
    assert list(Mention.objects.values_list("user__username", flat=True)) == ["bob"]
    private = Room.objects.create(slug="private", is_private=True)
    Membership.objects.create(room=private, user=ann)
    Membership.objects.create(room=private, user=cat)
    message_create(room=private, author=ann, body="@bob @cat")
    assert list(Mention.objects.filter(room=private).values_list("user__username", flat=True)) == ["cat"]
