"""Typing indicators: forwarded at most once per THROTTLE seconds per user and room."""

from __future__ import annotations

from chatcluster.conf import chat_settings
from chatcluster.redis import get_redis, room_shard


def _key(room: str, user: str) -> str:
    return f"chat:typing:{room}\n{user}"


async def typing_allowed(*, room: str, user: str) -> bool:
    """True when this typing event should go out; a key per user and room rations them."""
    return bool(
        await get_redis(room_shard(room)).set(
            _key(room, user), "1", nx=True, px=int(chat_settings.CHAT_TYPING_THROTTLE * 1000)
        )
    )


async def typing_clear(*, room: str, user: str) -> None:
    """The user sent a message: their next keystroke is news again, whatever the throttle.

    Others' pages drop "is typing" when the message lands; without this the first keys
    typed within CHAT_TYPING_THROTTLE of the last typing event never showed.
    """
    await get_redis(room_shard(room)).delete(_key(room, user))
