"""Open sockets per user, counted across every node in Redis, to cap them.

`chat:conns:<user id>` is a sorted set of connection ids scored by expiry. Nodes refresh
their sockets' entries on the presence heartbeat, so the sockets of a node that died
stop counting within PRESENCE_TTL. The key lives on the user's shard (`user_shard`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.conf import settings

from chat.redis import get_redis, get_script, user_shard

# Returns 1 and records the connection, or 0 when the user is at the limit already.
_OPEN = """
local key, conn, now, expiry, limit = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if not redis.call('ZSCORE', key, conn) and redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, expiry, conn)
redis.call('EXPIREAT', key, math.ceil(expiry))
return 1
"""


def _key(user_id: int) -> str:
    return f"chat:conns:{user_id}"


async def connection_open(*, user_id: int, conn: str) -> bool:
    """Count a new socket of `user_id`; False when they already hold CHAT_MAX_SOCKETS_PER_USER."""
    now = time.time()
    opened = await get_script(_OPEN, user_shard(user_id))(
        keys=[_key(user_id)], args=[conn, now, now + settings.PRESENCE_TTL, settings.CHAT_MAX_SOCKETS_PER_USER]
    )
    return bool(int(opened))


async def connection_close(*, user_id: int, conn: str) -> None:
    await get_redis(user_shard(user_id)).zrem(_key(user_id), conn)


async def connection_heartbeat(*, entries: Sequence[tuple[int, str]]) -> None:
    """Extend the given (user id, connection) entries, restoring any Redis lost."""
    if not entries:
        return
    expiry = time.time() + settings.PRESENCE_TTL
    by_shard: dict[int, list[tuple[int, str]]] = {}
    for user_id, conn in entries:
        by_shard.setdefault(user_shard(user_id), []).append((user_id, conn))
    for shard, pairs in by_shard.items():
        async with get_redis(shard).pipeline(transaction=False) as pipe:
            for user_id, conn in pairs:
                pipe.zadd(_key(user_id), {conn: expiry})
                pipe.expireat(_key(user_id), int(expiry) + 1)
            await pipe.execute()
