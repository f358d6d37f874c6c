"""Direct messages: one private room per set of people."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatcluster.errors import ChatError
from chatcluster.models import Room
from chatcluster.services.dms import dm_open
from chatcluster.services.rooms import room_resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def people() -> dict[str, User]:
    return {name: User.objects.create_user(name) for name in ("ann", "bob", "cat", "dan")}


def test_the_same_people_get_the_same_room_whoever_starts_it_and_in_any_order(people: dict[str, User]) -> None:
    first = dm_open(caller=people["ann"], usernames=["bob", "cat"])
    assert dm_open(caller=people["cat"], usernames=["bob", "ann"]).pk == first.pk
    assert dm_open(caller=people["bob"], usernames=["cat", "ann", "ann", "bob"]).pk == first.pk
    assert dm_open(caller=people["ann"], usernames=["bob"]).pk != first.pk
    assert first.is_private and first.is_direct
    assert sorted(first.members.values_list("username", flat=True)) == ["ann", "bob", "cat"]
    assert first.title == "ann, bob, cat"


def test_only_its_members_may_read_it(people: dict[str, User]) -> None:
    room = dm_open(caller=people["ann"], usernames=["bob"])
    assert room_resolve(slug=room.slug, user=people["bob"]).pk == room.pk
    with pytest.raises(ChatError) as caught:
        room_resolve(slug=room.slug, user=people["dan"])
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize(
    ("usernames", "code"),
    [
        ([], "bad_request"),
        (["ann"], "bad_request"),
        ([f"u{i}" for i in range(9)], "bad_request"),
        (["ghost"], "not_found"),
    ],
)
def test_bad_requests_are_refused_and_create_nothing(people: dict[str, User], usernames: list[str], code: str) -> None:
    for i in range(9):
        User.objects.get_or_create(username=f"u{i}")
    with pytest.raises(ChatError) as caught:
        dm_open(caller=people["ann"], usernames=usernames)
    assert caught.value.code == code
    assert not Room.objects.filter(is_direct=True).exists()


def test_eight_others_is_the_largest_group(people: dict[str, User]) -> None:
    others = [User.objects.create_user(f"g{i}").username for i in range(8)]
    assert dm_open(caller=people["ann"], usernames=others).members.count() == 9


def test_a_deactivated_user_cannot_be_messaged(people: dict[str, User]) -> None:
    User.objects.filter(username="dan").update(is_active=False)
    with pytest.raises(ChatError) as caught:
        dm_open(caller=people["ann"], usernames=["dan"])
    assert caught.value.code == "not_found"
