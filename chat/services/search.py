"""Search: messages whose body matches, in the rooms the user may read, newest first.

SQLite matches through an FTS5 table kept by triggers, PostgreSQL through a GIN index on
`to_tsvector('simple', body)` (migration 0004). Both take the words of the query, all
of which must appear; the query language of neither reaches the user.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.models import Message, Room
from chatcluster.policy import room_policy
from chatcluster.services.rooms import room_resolve

# Longest query: a sentence, not a document.
SEARCH_MAX_QUERY = 200


def message_search(*, user: User, query: str, room: str | None = None, limit: int = 20) -> list[dict[str, object]]:
    words = query.split()
    if not words or len(query) > SEARCH_MAX_QUERY:
        raise ChatError("bad_request", f"search for 1 to {SEARCH_MAX_QUERY} characters of words")
    limit = max(1, min(limit, chat_settings.CHAT_HISTORY_MAX))
    if room is not None:
        rooms = Room.objects.filter(pk=room_resolve(slug=room, user=user).pk)
    else:
        rooms = room_policy().readable_rooms(user=user)
    room_ids = rooms.values("pk")
    table = Message._meta.db_table
    if connection.vendor == "postgresql":
        matches = RawSQL(
            f"to_tsvector('simple', {table}.body) @@ plainto_tsquery('simple', %s)",
            [" ".join(words)],
            output_field=BooleanField(),
        )
        found = Message.objects.filter(matches)
    else:
        # Each word quoted as an FTS5 string: its operators (AND, NEAR, *, ^, :) are only text.
        match = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        fts = f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH %s"
        found = Message.objects.filter(pk__in=RawSQL(fts, [match]))
    # Messages only, never a change's own row, nor what was deleted.
    found = found.filter(kind=Message.Kind.MESSAGE, deleted=False)
    newest = found.filter(room_id__in=room_ids).order_by("-created_at", "-pk")
    hits = newest.values("room__slug", "seq", "author_name", "body", "created_at")[:limit]
    return [
        {
            "room": m["room__slug"],
            "seq": m["seq"],
            "user": m["author_name"],
            "body": m["body"],
            "ts": m["created_at"].isoformat(),
        }
        for m in hits
    ]
