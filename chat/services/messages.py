"""Messages: storing them with a gapless per-room seq, and reading them back as frames."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chat import protocol
from chat.errors import ChatError
from chat.models import Message, Room
from chat.services.rooms import room_resolve

# C0/C1 controls other than tab and newline, and the bidi embedding, override and
# isolate characters that can make a body spoof the layout around it.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class PostedMessage:
    room: str
    seq: int
    # The encoded `message` frame: serialised once, sent as is to every recipient.
    frame: str
    # False when an idempotency key matched an earlier publish: nothing new was stored.
    created: bool
    # The message's creation time (Unix seconds): nodes measure publish-to-deliver from it.
    ts: float = 0.0


def message_clean_body(*, body: str) -> str:
    cleaned = _UNSAFE.sub("", body).strip()
    if not cleaned:
        raise ChatError("bad_request", "body is empty")
    if len(cleaned) > settings.CHAT_MAX_BODY:
        raise ChatError("too_large", f"body is longer than {settings.CHAT_MAX_BODY} characters")
    return cleaned


def message_frame(*, room: str, seq: int, user: str, body: str, ts: str) -> str:
    return protocol.encode({"type": "message", "room": room, "seq": seq, "user": user, "body": body, "ts": ts})


def _frame_of(message: Message, room: str) -> str:
    return message_frame(
        room=room, seq=message.seq, user=message.author_name, body=message.body, ts=message.created_at.isoformat()
    )


def message_create(*, room: Room, author: User, body: str, key: str | None = None) -> PostedMessage:
    """Store a message under the room's next seq; a repeated `key` returns the first copy."""
    body = message_clean_body(body=body)
    if key is not None:
        existing = Message.objects.filter(room=room, author=author, client_key=key).first()
        if existing is not None:
            return PostedMessage(room=room.slug, seq=existing.seq, frame=_frame_of(existing, room.slug), created=False)
    try:
        with transaction.atomic():
            # One statement takes the room's row lock and the next seq. A concurrent
            # publisher on another node waits here until this transaction commits, so
            # seqs are gapless and commit in order.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Room._meta.db_table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",
                    [room.pk],
                )
                (seq,) = cursor.fetchone()
            message = Message.objects.create(
                room=room,
                seq=seq,
                author=author,
                author_name=author.get_username(),
                body=body,
                client_key=key,
                created_at=timezone.now(),
            )
    except IntegrityError:
        if key is None:
            raise
        # The same key raced in from another connection and won.
        existing = Message.objects.get(room=room, author=author, client_key=key)
        return PostedMessage(room=room.slug, seq=existing.seq, frame=_frame_of(existing, room.slug), created=False)
    return PostedMessage(
        room=room.slug, seq=seq, frame=_frame_of(message, room.slug), created=True, ts=message.created_at.timestamp()
    )


def message_publish(*, slug: str, author: User, body: str, key: str | None = None) -> PostedMessage:
    """Publish into the room `slug` on behalf of `author`, if they may."""
    room = room_resolve(slug=slug, user=author, create=True)
    return message_create(room=room, author=author, body=body, key=key)


def message_frames_after(*, room: Room, after: int, upto: int | None = None) -> list[str]:
    """Encoded frames of the messages with after < seq <= upto, oldest first."""
    messages = Message.objects.filter(room=room, seq__gt=after)
    if upto is not None:
        messages = messages.filter(seq__lte=upto)
    return [_frame_of(m, room.slug) for m in messages.order_by("seq")[: settings.CHAT_RECOVERY_MAX]]


def message_frames_between(*, slug: str, after: int, before: int) -> list[tuple[int, str]]:
    """(seq, frame) for after < seq < before: what a node missed on the channel layer."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return []
    messages = Message.objects.filter(room=room, seq__gt=after, seq__lt=before).order_by("seq")
    return [(m.seq, _frame_of(m, slug)) for m in messages[: settings.CHAT_RECOVERY_MAX]]


def message_history(*, slug: str, user: User, before: int | None, limit: int) -> list[dict[str, object]]:
    """Up to `limit` messages before seq `before` (newest when None), oldest first."""
    room = room_resolve(slug=slug, user=user)
    limit = max(1, min(limit, settings.CHAT_HISTORY_MAX))
    messages = Message.objects.filter(room=room)
    if before is not None:
        messages = messages.filter(seq__lt=before)
    newest_first = list(messages.order_by("-seq").values("seq", "author_name", "body", "created_at")[:limit])
    return [
        {"room": slug, "seq": m["seq"], "user": m["author_name"], "body": m["body"], "ts": m["created_at"].isoformat()}
        for m in reversed(newest_first)
    ]


def message_last_seqs(*, slugs: list[str]) -> dict[str, int]:
    """Each room's newest committed seq: what a node checks its feeds against."""
    return dict(Room.objects.filter(slug__in=slugs).values_list("slug", "last_seq"))
