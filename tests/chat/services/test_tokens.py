from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatcluster.errors import ChatError
from chatcluster.services.tokens import token_issue, token_user

pytestmark = pytest.mark.django_db


def test_a_token_names_its_user() -> None:
    alice = User.objects.create_user("alice")
    token, ttl = token_issue(user=alice, ttl=60)
    assert ttl == 60
    assert token_user(token=token) == alice


@pytest.mark.parametrize("mangle", [lambda t: t + "x", lambda t: "x" + t[1:], lambda t: "garbage"])
def test_forged_tokens_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    token, _ = token_issue(user=User.objects.create_user("alice"))
    with pytest.raises(ChatError) as caught:
        token_user(token=mangle(token))
    assert caught.value.code == "unauthorized"


def test_an_expired_token_is_refused() -> None:
    token, _ = token_issue(user=User.objects.create_user("alice"), ttl=-1)
    with pytest.raises(ChatError, match="expired"):
        token_user(token=token)


def test_a_password_change_or_deactivation_voids_tokens() -> None:
    alice = User.objects.create_user("alice", password="one-password")
    token, _ = token_issue(user=alice)
    alice.set_password("another-password")
    alice.save()
    with pytest.raises(ChatError):
        token_user(token=token)
    token, _ = token_issue(user=alice)
    alice.is_active = False
    alice.save()
    with pytest.raises(ChatError):
        token_user(token=token)
