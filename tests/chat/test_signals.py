"""message_edited and message_deleted: an admin's change to a message reaches host code."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from chatcluster.models import Message
from chatcluster.services.messages import message_publish
from chatcluster.signals import message_deleted, message_edited

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard() -> Any:
    got: list[tuple[str, dict[str, Any]]] = []

    def on_edit(sender: Any, *, room: str, seq: int, user: Any, message: dict[str, Any], **kwargs: Any) -> None:
        got.append(("edited", message))

    def on_delete(sender: Any, *, room: str, seq: int, user: Any, message: dict[str, Any], **kwargs: Any) -> None:
        got.append(("deleted", message))

    message_edited.connect(on_edit, weak=False)
    message_deleted.connect(on_delete, weak=False)
    yield got
    message_edited.disconnect(on_edit)
    message_deleted.disconnect(on_delete)


def test_an_edit_in_the_admin_is_announced_with_the_new_body(admin_client: Any, heard: Any) -> None:
    alice = User.objects.create_user("alice")
    message_publish(slug="r", author=alice, body="typo")
    message = Message.objects.get(room__slug="r", seq=1)
    message.body = "fixed"
    message.save()
    assert [(kind, m["room"], m["seq"], m["user"], m["body"]) for kind, m in heard] == [
        ("edited", "r", 1, "alice", "fixed")
    ]


def test_a_deletion_is_announced_and_a_new_message_is_not_an_edit(heard: Any) -> None:
    alice = User.objects.create_user("alice")
    message_publish(slug="r", author=alice, body="oops")
    assert heard == []
    Message.objects.get(room__slug="r", seq=1).delete()
    assert [(kind, m["seq"], m["body"]) for kind, m in heard] == [("deleted", 1, "oops")]
