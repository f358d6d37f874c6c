"""History: a room's messages in their final state, a page at a time."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from chatcluster.conf import chat_settings
from chatcluster.models import Message, Reaction
from chatcluster.services.rooms import room_resolve


def message_history(
    *, slug: str, user: User, before: int | None, limit: int, around: int | None = None
) -> list[dict[str, object]]:
    """Up to `limit` messages before seq `before` (newest when None), oldest first, in their final state.

    With `around`, the messages centred on that seq instead: how a search result opens.
    """
    room = room_resolve(slug=slug, user=user)
    limit = max(1, min(limit, chat_settings.CHAT_HISTORY_MAX))
    messages = Message.objects.filter(room=room, kind=Message.Kind.MESSAGE)
    fields = ("id", "seq", "author_name", "body", "created_at", "edited_at", "deleted")
    if around is not None:
        # Half after it, the rest (more, near the room's end) up to and including it.
        newer = list(messages.filter(seq__gt=around).order_by("seq").values(*fields)[: limit // 2])
        older = list(messages.filter(seq__lte=around).order_by("-seq").values(*fields)[: limit - len(newer)])
        rows = [*reversed(older), *newer]
    else:
        if before is not None:
            messages = messages.filter(seq__lt=before)
        rows = list(reversed(messages.order_by("-seq").values(*fields)[:limit]))
    reactions = _reactions_of([m["id"] for m in rows if not m["deleted"]])
    return [_history_entry(slug, m, reactions.get(m["id"], {})) for m in rows]


def _reactions_of(message_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    found: dict[int, dict[str, list[str]]] = {}
    if not message_ids:
        return found
    rows = (
        Reaction.objects.filter(message_id__in=message_ids, on=True)
        .order_by("seq")
        .values_list("message_id", "emoji", "user_name")
    )
    for message_id, emoji, name in rows:
        found.setdefault(message_id, {}).setdefault(emoji, []).append(name)
    return found


def _history_entry(slug: str, m: dict[str, Any], reactions: dict[str, list[str]]) -> dict[str, object]:
    entry: dict[str, object] = {"room": slug, "seq": m["seq"], "user": m["author_name"]}
    if m["deleted"]:
        entry["deleted"] = True
    else:
        entry["body"] = m["body"]
    entry["ts"] = m["created_at"].isoformat()
    if m["edited_at"] and not m["deleted"]:
        entry["edited"] = m["edited_at"].isoformat()
    entry["reactions"] = reactions
    return entry
