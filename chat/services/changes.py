"""Changes to messages (edit, delete, react): each an entry of its own in the room's seq stream.

A change takes the room's next seq in the same transaction that updates the message's final
state, so a replay of the stream and a history read agree. The room's row lock, taken first,
orders concurrent changes to one message as it orders publishes.
"""

from __future__ import annotations

from datetime import datetime

import regex
from django.contrib.auth.models import User
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from chatcluster import protocol
from chatcluster.errors import ChatError
from chatcluster.models import Mention, Message, Reaction, Room
from chatcluster.services.messages import PostedMessage, entry_frame, message_clean_body, room_take_seqs
from chatcluster.services.moderation import moderation_log_delete, room_can_moderate
from chatcluster.services.rooms import room_resolve
from chatcluster.signals import message_deleted, message_edited

# The most code points one reaction may hold: a family or a flag with its modifiers.
EMOJI_MAX_CODEPOINTS = 16
_ONE_GRAPHEME = regex.compile(r"\X")
# A pictograph, a flag's regional indicators, or a keycap: what makes a grapheme an emoji.
_EMOJI_PART = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")


def emoji_check(*, emoji: str) -> str:
    if not (0 < len(emoji) <= EMOJI_MAX_CODEPOINTS and _ONE_GRAPHEME.fullmatch(emoji) and _EMOJI_PART.search(emoji)):
        raise ChatError("bad_request", f"emoji must be one emoji of at most {EMOJI_MAX_CODEPOINTS} code points")
    return emoji


def message_edit(*, slug: str, user: User, target: int, body: str) -> PostedMessage:
    body = message_clean_body(body=body)
    room = room_resolve(slug=slug, user=user, publish=True)
    with transaction.atomic():
        seq = room_take_seqs(room_id=room.pk)
        message = _target(room, target)
        if message.author_id != user.pk:
            raise ChatError("forbidden", "only its author may edit a message")
        now = timezone.now()
        Message.objects.filter(pk=message.pk).update(body=body, edited_at=now)
        entry = _append(room, user, seq, Message.Kind.EDIT, target, now, body=body)
    _announce(message_edited, room, message, body=body, edited=now)
    return _posted(entry, room)


def message_delete(*, slug: str, user: User, target: int) -> PostedMessage:
    room = room_resolve(slug=slug, user=user)
    with transaction.atomic():
        seq = room_take_seqs(room_id=room.pk)
        message = _target(room, target, deleted_ok=True)
        if message.deleted:
            # A repeat, perhaps a retry after a lost ack: the first delete's answer.
            first = Message.objects.filter(room=room, kind=Message.Kind.DELETE, target=target).order_by("seq").first()
            if first is None:  # deleted outside the stream (the admin)
                raise ChatError("not_found", f"message {target} was deleted")
            transaction.set_rollback(True)  # gives the seq back
            return _posted(first, room, created=False)
        if message.author_id != user.pk and not room_can_moderate(room=room, user=user):
            raise ChatError("forbidden", "only the author, the room's moderators and staff delete a message")
        now = timezone.now()
        Message.objects.filter(pk=message.pk).update(body="", deleted=True)
        # The text goes from replays and search too: what was deleted is not kept anywhere.
        Message.objects.filter(room=room, kind=Message.Kind.EDIT, target=target).update(body="")
        Mention.objects.filter(room=room, seq=target).delete()
        if message.author_id != user.pk:
            moderation_log_delete(room=room, actor=user, author_name=message.author_name, seq=target)
        entry = _append(room, user, seq, Message.Kind.DELETE, target, now)
    _announce(message_deleted, room, message, deleted=True)
    return _posted(entry, room)


def message_react(*, slug: str, user: User, target: int, emoji: str, on: bool) -> PostedMessage:
    emoji = emoji_check(emoji=emoji)
    room = room_resolve(slug=slug, user=user, publish=True)
    with transaction.atomic():
        seq = room_take_seqs(room_id=room.pk)
        message = _target(room, target)
        held = Reaction.objects.filter(message=message, user=user, emoji=emoji).first()
        if (held is not None and held.on == on) or (held is None and not on):
            # Already so: nothing changes (the seq is given back), and the answer is the
            # seq that made it so.
            transaction.set_rollback(True)
            first = held.seq if held is not None else message.seq
            return PostedMessage(room=room.slug, seq=first, frame="", created=False)
        now = timezone.now()
        if held is None:
            Reaction.objects.create(message=message, user=user, user_name=user.get_username(), emoji=emoji, seq=seq)
        else:
            Reaction.objects.filter(pk=held.pk).update(on=on, seq=seq)
        entry = _append(room, user, seq, Message.Kind.REACT, target, now, emoji=emoji, on=on)
    return _posted(entry, room)


def change_of(command: protocol.Edit | protocol.Delete | protocol.React, user: User) -> PostedMessage:
    """Apply a change frame's command for `user`."""
    match command:
        case protocol.Edit():
            return message_edit(slug=command.room, user=user, target=command.target, body=command.body)
        case protocol.Delete():
            return message_delete(slug=command.room, user=user, target=command.target)
        case protocol.React():
            return message_react(
                slug=command.room, user=user, target=command.target, emoji=command.emoji, on=command.on
            )


def _announce(signal: Signal, room: Room, message: Message, **state: object) -> None:
    """Host code hears of the change through chatcluster.signals, as of an admin edit."""
    if not signal.has_listeners():
        return
    frame = {
        "type": "message",
        "room": room.slug,
        "seq": message.seq,
        "user": message.author_name,
        "body": "" if state.get("deleted") else state.get("body", message.body),
        "ts": message.created_at.isoformat(),
    }
    if isinstance(edited := state.get("edited"), datetime):
        frame["edited"] = edited.isoformat()
    if state.get("deleted"):
        frame["deleted"] = True
    # Robust: a failing receiver is logged (django.dispatch) and the change stands.
    signal.send_robust(sender=Message, room=room.slug, seq=message.seq, user=message.author, message=frame)


def _target(room: Room, target: int, *, deleted_ok: bool = False) -> Message:
    message = Message.objects.filter(room=room, seq=target).first()
    if message is None or message.kind != Message.Kind.MESSAGE:
        raise ChatError("not_found", f"{room.slug} has no message {target}")
    if message.deleted and not deleted_ok:
        raise ChatError("not_found", f"message {target} was deleted")
    return message


def _append(
    room: Room,
    user: User,
    seq: int,
    kind: str,
    target: int,
    now: datetime,
    *,
    body: str = "",
    emoji: str = "",
    on: bool | None = None,
) -> Message:
    return Message.objects.create(
        room=room,
        seq=seq,
        author=user,
        author_name=user.get_username(),
        body=body,
        kind=kind,
        target=target,
        emoji=emoji,
        reaction_on=on,
        created_at=now,
    )


def _posted(entry: Message, room: Room, *, created: bool = True) -> PostedMessage:
    return PostedMessage(
        room=room.slug,
        seq=entry.seq,
        frame=entry_frame(entry, room.slug),
        created=created,
        ts=entry.created_at.timestamp(),
    )
