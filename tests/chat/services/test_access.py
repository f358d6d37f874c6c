from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

from chatcluster.models import Membership, Room
from chatcluster.services.access import Grant, access_auth_hash, access_review

pytestmark = pytest.mark.django_db


def grant_of(user: User, conn: str, session_key: str | None = None) -> Grant:
    return Grant(conn=conn, user_id=user.pk, auth_hash=access_auth_hash(user=user), session_key=session_key)


def test_sockets_of_active_users_with_live_sessions_stay() -> None:
    alice = User.objects.create_user("alice", password="pw-1")
    session = SessionStore()
    session.create()
    review = access_review(
        grants=[grant_of(alice, "a/1"), grant_of(alice, "a/2", session.session_key)], subscriptions=[]
    )
    assert review.revoked == set() and review.evicted == []


def test_deactivation_password_change_deletion_and_a_gone_session_each_revoke() -> None:
    inactive, changed, deleted, logged_out = (User.objects.create_user(n, password="pw-1") for n in "abcd")
    grants = [
        grant_of(inactive, "1"),
        grant_of(changed, "2"),
        grant_of(deleted, "3"),
        grant_of(logged_out, "4", "gone"),
    ]
    inactive.is_active = False
    inactive.save()
    changed.set_password("pw-2")
    changed.save()
    deleted.delete()
    assert access_review(grants=grants, subscriptions=[]).revoked == {"1", "2", "3", "4"}


def test_only_private_rooms_the_user_left_are_evicted() -> None:
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    secret = Room.objects.create(slug="secret", is_private=True)
    Room.objects.create(slug="open")
    Membership.objects.create(room=secret, user=bob)
    review = access_review(
        grants=[grant_of(alice, "a"), grant_of(bob, "b")],
        subscriptions=[("a", alice.pk, "secret"), ("a", alice.pk, "open"), ("b", bob.pk, "secret")],
    )
    assert review.evicted == [("a", "secret")]
