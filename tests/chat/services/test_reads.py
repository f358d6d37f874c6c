from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatcluster.errors import ChatError
from chatcluster.models import Membership, Room
from chatcluster.services.reads import read_mark, read_markers

pytestmark = pytest.mark.django_db


def test_a_read_marker_is_created_then_moves_forward() -> None:
    user = User.objects.create_user("amy")
    room = Room.objects.create(slug="r", last_seq=10)
    assert read_mark(slug="r", user=user, seq=4) == 4
    assert read_mark(slug="r", user=user, seq=9) == 9
    assert read_markers(user=user, rooms=[room]) == {room.pk: 9}


def test_a_read_marker_never_moves_back_when_another_tab_reports_late() -> None:
    user = User.objects.create_user("amy")
    Room.objects.create(slug="r", last_seq=10)
    read_mark(slug="r", user=user, seq=8)
    assert read_mark(slug="r", user=user, seq=3) == 8


def test_a_read_marker_past_the_last_message_is_refused() -> None:
    user = User.objects.create_user("amy")
    Room.objects.create(slug="r", last_seq=2)
    with pytest.raises(ChatError) as caught:
        read_mark(slug="r", user=user, seq=3)
    assert caught.value.code == "bad_request"


def test_a_private_room_takes_no_read_marker_from_a_non_member() -> None:
    Room.objects.create(slug="secret", is_private=True, last_seq=2)
    with pytest.raises(ChatError) as caught:
        read_mark(slug="secret", user=User.objects.create_user("eve"), seq=1)
    assert caught.value.code == "forbidden"


def test_markers_are_per_user() -> None:
    amy, bob = User.objects.create_user("amy"), User.objects.create_user("bob")
    room = Room.objects.create(slug="r", last_seq=5)
    Membership.objects.create(room=room, user=amy)
    read_mark(slug="r", user=amy, seq=5)
    assert read_markers(user=bob, rooms=[room]) == {}
