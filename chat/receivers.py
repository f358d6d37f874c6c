"""Tell every node when a user's sockets lose access: logout, deactivation, removal.

The broadcast is a hint that acts at once; each node's access review re-checks every
socket against the database within CHAT_ACCESS_RECHECK seconds if it is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.db import connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from chatcluster import broadcast
from chatcluster.models import Membership, Message, Room
from chatcluster.signals import message_deleted, message_edited

logger = logging.getLogger(__name__)


@receiver(user_logged_out)
def close_sockets_of_the_session(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None and request.session.session_key:
        broadcast.after_commit(broadcast.publish_revoke, user.pk, request.session.session_key)


@receiver(post_save, sender=get_user_model())
def close_sockets_of_an_inactive_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.is_active:
        broadcast.after_commit(broadcast.publish_revoke, instance.pk, None)


@receiver(post_save, sender=Membership)
def tell_a_new_member(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if created:
        broadcast.after_commit(broadcast.publish_added, instance.user_id, instance.room.slug)


@receiver(post_delete, sender=Membership)
def end_subscriptions_of_a_removed_member(sender: Any, instance: Membership, **kwargs: Any) -> None:
    try:
        slug = instance.room.slug
    except Room.DoesNotExist:
        return  # the room itself is being deleted
    broadcast.after_commit(broadcast.publish_evict, instance.user_id, slug)


# Messages change outside the publish path only in the admin today (docs/integrate.md):
# its edits and deletions reach host code through the same signals a node would send.
@receiver(post_save, sender=Message)
def announce_an_edited_message(sender: Any, instance: Message, created: bool, **kwargs: Any) -> None:
    if not created and message_edited.has_listeners():
        _announce(message_edited, instance)


@receiver(post_delete, sender=Message)
def announce_a_deleted_message(sender: Any, instance: Message, **kwargs: Any) -> None:
    if message_deleted.has_listeners():
        _announce(message_deleted, instance)


def _announce(signal: Signal, message: Message) -> None:
    slug = Room.objects.filter(pk=message.room_id).values_list("slug", flat=True).first() or ""
    frame = {
        "type": "message",
        "room": slug,
        "seq": message.seq,
        "user": message.author_name,
        "body": message.body,
        "ts": message.created_at.isoformat(),
    }
    signal.send(sender=Message, room=slug, seq=message.seq, user=message.author, message=frame)


@receiver(request_finished)
def close_the_connections_of_an_asgi_request(sender: Any, **kwargs: Any) -> None:
    """Under ASGI, close what the request opened: its thread is never reused.

    Django's ASGI handler runs each request's sync code in a thread of its own, which ends
    with the request, so a persistent connection (DB_CONN_MAX_AGE) opened there is never
    reused and lingers until collected: 80 concurrent API publishes used up PostgreSQL's
    100 connections. The sockets' ORM calls run on long-lived threads and keep theirs.
    Runs in the request's thread (response.close sends it there).
    """
    if isinstance(sender, type) and issubclass(sender, ASGIHandler):
        for connection in connections.all(initialized_only=True):
            connection.close()
