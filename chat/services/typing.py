"""Typing indicators: forwarded at most once per THROTTLE seconds per user and room."""

from __future__ import annotations

from chatcluster.conf import chat_settings
from chatcluster.redis import get_redis, room_shard


async def typing_allowed(*, room: str, user: str) -> bool:
    """True when this typing event should go out; a key per user and room rations them."""
    key = f"chat:typing:{room}\n{user}"
    return bool(
        await get_redis(room_shard(room)).set(key, "1", nx=True, px=int(chat_settings.CHAT_TYPING_THROTTLE * 1000))
    )
