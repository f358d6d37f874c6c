"""Open sockets per user, counted across every node in Redis, to cap them.

`chat:sockets:<user id>` is the set of the user's connection ids, on the user's shard
(`user_shard`). Each entry is held by its node's lease (`chat.services.liveness`): a
closed socket frees its place at once, a dead node's sockets when its lease lapses.
"""

from __future__ import annotations

from chatcluster.conf import chat_settings
from chatcluster.redis import get_script, user_shard
from chatcluster.services.liveness import INSTANCE, LUA_COMMON, socket_entry

# ARGV: user id, conn, limit, held entry, instance. Returns 1 and records the
# connection, or 0 when the user is at the limit already.
_OPEN = (
    LUA_COMMON
    + """
local uid, conn, limit, entry, instance = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local key = sockets_key(uid)
if redis.call('SISMEMBER', key, conn) == 1 then return 1 end
if redis.call('SCARD', key) >= limit then return 0 end
redis.call('SADD', key, conn)
redis.call('SADD', held_key(instance), entry)
return 1
"""
)

_CLOSE = (
    LUA_COMMON
    + """
redis.call('SREM', held_key(ARGV[4]), ARGV[3])
redis.call('SREM', sockets_key(ARGV[1]), ARGV[2])
return 0
"""
)


async def connection_open(*, user_id: int, conn: str, instance: str = INSTANCE) -> bool:
    """Count a new socket of `user_id`; False when they already hold CHAT_MAX_SOCKETS_PER_USER."""
    entry = socket_entry(user_id=user_id, conn=conn)
    opened = await get_script(_OPEN, user_shard(user_id))(
        args=[user_id, conn, chat_settings.CHAT_MAX_SOCKETS_PER_USER, entry, instance]
    )
    return bool(int(opened))


async def connection_close(*, user_id: int, conn: str, instance: str = INSTANCE) -> None:
    entry = socket_entry(user_id=user_id, conn=conn)
    await get_script(_CLOSE, user_shard(user_id))(args=[user_id, conn, entry, instance])
