from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from chatcluster.services.tokens import token_user

pytestmark = pytest.mark.django_db


def test_prints_one_token_per_user_in_order_creating_with_create() -> None:
    out = StringIO()
    call_command("chat_token", "zed", "amy", "--create", "--ttl", "60", stdout=out)
    tokens = out.getvalue().split()
    assert [token_user(token=t).username for t in tokens] == ["zed", "amy"]


def test_refuses_unknown_users_without_create() -> None:
    User.objects.create_user("amy")
    with pytest.raises(CommandError, match="--create"):
        call_command("chat_token", "amy", "nobody", stdout=StringIO())
