"""Messages: storing them with a gapless per-room seq, and reading them back as frames."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chatcluster import protocol
from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.models import Membership, Message, Room
from chatcluster.policy import policy_is_default
from chatcluster.services.mentions import mention_record
from chatcluster.services.moderation import moderators_among, sanction_refusal, sanctions_among, slow_mode_wait
from chatcluster.services.rooms import room_check_slug, room_resolve

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
    if len(cleaned) > chat_settings.CHAT_MAX_BODY:
        raise ChatError("too_large", f"body is longer than {chat_settings.CHAT_MAX_BODY} characters")
    return cleaned


def message_frame(*, room: str, seq: int, user: str, body: str, ts: str) -> str:
    return protocol.encode({"type": "message", "room": room, "seq": seq, "user": user, "body": body, "ts": ts})


def entry_frame(entry: Message, room: str) -> str:
    """The frame of an entry of the seq stream: a message in its current state, or a change."""
    ts = entry.created_at.isoformat()
    if entry.kind == Message.Kind.MESSAGE:
        if not (entry.edited_at or entry.deleted):
            return message_frame(room=room, seq=entry.seq, user=entry.author_name, body=entry.body, ts=ts)
        frame: dict[str, Any] = {"type": "message", "room": room, "seq": entry.seq, "user": entry.author_name}
        frame["body"] = "" if entry.deleted else entry.body
        frame["ts"] = ts
        if entry.edited_at:
            frame["edited"] = entry.edited_at.isoformat()
        if entry.deleted:
            frame["deleted"] = True
        return protocol.encode(frame)
    frame = {"type": entry.kind, "room": room, "seq": entry.seq, "target": entry.target, "user": entry.author_name}
    if entry.kind == Message.Kind.EDIT:
        frame["body"] = entry.body
    elif entry.kind == Message.Kind.REACT:
        frame["emoji"], frame["on"] = entry.emoji, bool(entry.reaction_on)
    frame["ts"] = ts
    return protocol.encode(frame)


def room_take_seqs(*, room_id: int, count: int = 1) -> int:
    """Take the room's next `count` seqs inside the caller's transaction; returns the last.

    One statement takes the room's row lock and the seqs. A concurrent publisher or change
    on another node waits here until this transaction commits, so seqs are gapless and
    commit in order; a rollback gives them back.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Room._meta.db_table} SET last_seq = last_seq + %s WHERE id = %s RETURNING last_seq",
            [count, room_id],
        )
        (last,) = cursor.fetchone()
    return int(last)


def message_create(*, room: Room, author: User, body: str, key: str | None = None) -> PostedMessage:
    """Store a message under the room's next seq; a repeated `key` returns the first copy."""
    body = message_clean_body(body=body)
    if key is not None:
        existing = Message.objects.filter(room=room, author=author, client_key=key).first()
        if existing is not None:
            return PostedMessage(
                room=room.slug, seq=existing.seq, frame=entry_frame(existing, room.slug), created=False
            )
    try:
        with transaction.atomic():
            seq = room_take_seqs(room_id=room.pk)
            message = Message.objects.create(
                room=room,
                seq=seq,
                author=author,
                author_name=author.get_username(),
                body=body,
                client_key=key,
                created_at=timezone.now(),
            )
            mention_record(room_id=room.pk, entries=[(seq, author.pk, body)])
    except IntegrityError:
        if key is None:
            raise
        # The same key raced in from another connection and won.
        existing = Message.objects.get(room=room, author=author, client_key=key)
        return PostedMessage(room=room.slug, seq=existing.seq, frame=entry_frame(existing, room.slug), created=False)
    return PostedMessage(
        room=room.slug, seq=seq, frame=entry_frame(message, room.slug), created=True, ts=message.created_at.timestamp()
    )


def message_publish(*, slug: str, author: User, body: str, key: str | None = None) -> PostedMessage:
    """Publish into the room `slug` on behalf of `author`, if they may."""
    room = room_resolve(slug=slug, user=author, create=True, publish=True)
    return message_create(room=room, author=author, body=body, key=key)


@dataclass(frozen=True)
class PublishRequest:
    slug: str
    author: User
    body: str
    key: str | None = None
    # False for host code that publishes on its own authority (chatcluster.host).
    rate_limited: bool = True


def message_publish_batch(*, requests: Sequence[PublishRequest]) -> list[PostedMessage | ChatError]:
    """Publish several messages under one write lock and one commit, each with its own outcome.

    A node writes its sockets' publishes this way: the lock and the commit (an fsync on
    SQLite, a round trip on PostgreSQL) are paid once per batch, not once per message. A
    refused request (bad body, no such room, private) fails alone; the others go on.
    """
    outcomes: list[PostedMessage | ChatError | None] = [None] * len(requests)
    bodies: dict[int, str] = {}
    for i, request in enumerate(requests):
        try:
            room_check_slug(slug=request.slug)
            bodies[i] = message_clean_body(body=request.body)
        except ChatError as exc:
            outcomes[i] = exc
    rooms = _rooms_for(requests, outcomes)
    fresh, repeat_of = _drop_repeats(requests, rooms, outcomes)
    if fresh:
        try:
            _store(requests, rooms, bodies, fresh, outcomes)
        except IntegrityError:
            # The same idempotency key raced in from another node and won: redo this
            # batch one message at a time, which finds the winner's copy.
            for i in fresh:
                try:
                    outcomes[i] = message_publish(
                        slug=requests[i].slug, author=requests[i].author, body=requests[i].body, key=requests[i].key
                    )
                except ChatError as exc:
                    outcomes[i] = exc
    for i, first in repeat_of.items():
        # A retry within the batch gets its first copy's answer.
        copy = outcomes[first]
        outcomes[i] = replace(copy, created=False) if isinstance(copy, PostedMessage) else copy
    return [o if o is not None else ChatError("internal", "not published") for o in outcomes]


def _rooms_for(requests: Sequence[PublishRequest], outcomes: list[PostedMessage | ChatError | None]) -> dict[int, int]:
    """Each still-valid request's room id, checked as `room_resolve` would, in one or two queries.

    Plain SQL: on this path, per batch, the ORM's query building cost more than the query.
    """
    wanted = sorted({requests[i].slug for i, o in enumerate(outcomes) if o is None})
    found: dict[str, tuple[int, bool]] = {}
    slow: dict[int, int] = {}
    if wanted:
        with connection.cursor() as cursor:
            marks = ", ".join(["%s"] * len(wanted))
            cursor.execute(
                f"SELECT slug, id, is_private, slow_seconds FROM {Room._meta.db_table} WHERE slug IN ({marks})", wanted
            )
            rows = cursor.fetchall()
            found = {slug: (room_id, bool(private)) for slug, room_id, private, _ in rows}
            slow = {room_id: int(seconds) for _, room_id, _, seconds in rows if seconds}
    private = [room_id for room_id, is_private in found.values() if is_private]
    members: set[tuple[int, int]] = set()
    if private:
        users = {requests[i].author.pk for i, o in enumerate(outcomes) if o is None}
        members = set(
            Membership.objects.filter(room_id__in=private, user_id__in=users).values_list("room_id", "user_id")
        )
    rooms: dict[int, int] = {}
    default = policy_is_default()
    for i, request in enumerate(requests):
        if outcomes[i] is not None:
            continue
        room = found.get(request.slug)
        try:
            if room is None or not default or (room[1] and (room[0], request.author.pk) not in members):
                # A room to create, a host's own policy to ask, or a refusal to word exactly
                # as room_resolve does.
                resolved = room_resolve(slug=request.slug, user=request.author, create=True, publish=True)
                room = found[request.slug] = (resolved.pk, resolved.is_private)
                members.add((resolved.pk, request.author.pk))
            rooms[i] = room[0]
        except ChatError as exc:
            outcomes[i] = exc
    _moderate(requests, rooms, slow, outcomes)
    return rooms


def _moderate(
    requests: Sequence[PublishRequest],
    rooms: dict[int, int],
    slow: dict[int, int],
    outcomes: list[PostedMessage | ChatError | None],
) -> None:
    """Refuse the publishes of banned and muted authors, and those too soon in a slow room."""
    if not rooms:
        return
    authors = {requests[i].author.pk for i in rooms}
    sanctions = sanctions_among(room_ids=set(rooms.values()), user_ids=authors)
    slow_pairs = {(room_id, requests[i].author.pk) for i, room_id in rooms.items() if room_id in slow}
    exempt = moderators_among(room_ids={r for r, _ in slow_pairs}, user_ids=authors) if slow_pairs else set()
    now = timezone.now()
    sent: set[tuple[int, int]] = set()
    for i, room_id in list(rooms.items()):
        request = requests[i]
        pair = (room_id, request.author.pk)
        refusal = sanction_refusal(slug=request.slug, kinds=sanctions.get(pair, set()), publish=True)
        if refusal is None and pair in slow_pairs and pair not in exempt and not request.author.is_staff:
            seconds = slow[room_id]
            wait = (
                float(seconds)
                if pair in sent
                else slow_mode_wait(room_id=room_id, user_id=pair[1], seconds=seconds, now=now)
            )
            if wait > 0:
                refusal = ChatError(
                    "rate_limited", f"{request.slug} is in slow mode: one message every {seconds} s", retry_after=wait
                )
        if refusal is not None:
            outcomes[i] = refusal
            del rooms[i]
        else:
            sent.add(pair)


def _drop_repeats(
    requests: Sequence[PublishRequest], rooms: dict[int, int], outcomes: list[PostedMessage | ChatError | None]
) -> tuple[list[int], dict[int, int]]:
    """The requests to store, and each in-batch retry's first copy; answers keys stored before."""
    fresh: list[int] = []
    repeat_of: dict[int, int] = {}
    first: dict[tuple[int, int | None, str], int] = {}
    for i in rooms:
        key = requests[i].key
        if key is None:
            fresh.append(i)
        elif (mark := (rooms[i], requests[i].author.pk, key)) in first:
            repeat_of[i] = first[mark]
        else:
            first[mark] = i
            fresh.append(i)
    if first:
        earlier = Message.objects.filter(
            room_id__in={room for room, _, _ in first}, client_key__in={key for _, _, key in first}
        )
        for message in earlier:
            stored = first.get((message.room_id, message.author_id, message.client_key or ""))
            if stored is not None:
                slug = requests[stored].slug
                frame = entry_frame(message, slug)
                outcomes[stored] = PostedMessage(room=slug, seq=message.seq, frame=frame, created=False)
                fresh.remove(stored)
    return fresh, repeat_of


def _store(
    requests: Sequence[PublishRequest],
    rooms: dict[int, int],
    bodies: dict[int, str],
    fresh: list[int],
    outcomes: list[PostedMessage | ChatError | None],
) -> None:
    by_room: dict[int, list[int]] = defaultdict(list)
    for i in fresh:
        by_room[rooms[i]].append(i)
    now = timezone.now()
    ts, unix_ts = now.isoformat(), now.timestamp()
    stored_at = connection.ops.adapt_datetimefield_value(now)
    rows: list[Any] = []
    posted: dict[int, PostedMessage] = {}
    mentioning: dict[int, list[tuple[int, int | None, str]]] = defaultdict(list)
    with transaction.atomic(), connection.cursor() as cursor:
        # Rooms in id order, so two nodes' batches lock shared rooms in the same order.
        for room_id in sorted(by_room):
            batch = by_room[room_id]
            last = room_take_seqs(room_id=room_id, count=len(batch))
            for seq, i in enumerate(batch, start=last - len(batch) + 1):
                request = requests[i]
                name = request.author.get_username()
                rows += [room_id, seq, request.author.pk, name, bodies[i], request.key, stored_at]
                frame = message_frame(room=request.slug, seq=seq, user=name, body=bodies[i], ts=ts)
                posted[i] = PostedMessage(room=request.slug, seq=seq, frame=frame, created=True, ts=unix_ts)
                if "@" in bodies[i]:
                    mentioning[room_id].append((seq, request.author.pk, bodies[i]))
        # One multi-row INSERT (bulk_create's SQL, without building a model per row).
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(posted))
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} "
            f"(room_id, seq, author_id, author_name, body, client_key, created_at) VALUES {values}",
            rows,
        )
        for room_id, entries in mentioning.items():
            mention_record(room_id=room_id, entries=entries)
    for i, message in posted.items():
        outcomes[i] = message


def message_frames_after(*, room: Room, after: int, upto: int | None = None) -> list[str]:
    """Encoded frames of the messages with after < seq <= upto, oldest first."""
    # Every recovering subscribe comes here: plain SQL costs a fraction of a compiled queryset.
    table = connection.ops.quote_name(Message._meta.db_table)
    bound = "" if upto is None else " AND seq <= %s"
    messages = Message.objects.raw(
        f"SELECT id, seq, author_name, body, created_at, kind, target, emoji, reaction_on, edited_at, deleted"
        f" FROM {table}"
        f" WHERE room_id = %s AND seq > %s{bound} ORDER BY seq LIMIT %s",
        [room.pk, after, *([] if upto is None else [upto]), chat_settings.CHAT_RECOVERY_MAX],
    )
    return [entry_frame(m, room.slug) for m in messages]


def message_frames_between(*, slug: str, after: int, before: int) -> list[tuple[int, str]]:
    """(seq, frame) for after < seq < before: what a node missed on the channel layer."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return []
    messages = Message.objects.filter(room=room, seq__gt=after, seq__lt=before).order_by("seq")
    return [(m.seq, entry_frame(m, slug)) for m in messages[: chat_settings.CHAT_RECOVERY_MAX]]


def message_last_seqs(*, slugs: list[str]) -> dict[str, int]:
    """Each room's newest committed seq: what a node checks its feeds against."""
    return dict(Room.objects.filter(slug__in=slugs).values_list("slug", "last_seq"))
