"""Presence: who is in which room, per user, across every node, kept in Redis.

A user is in a room while any of their connections, on any node, is. Each connection's
entry is held by its node's lease (`chat.services.liveness`): a clean leave removes it at
once, a dead node's entries go when its lease lapses. Each script runs atomically, so
exactly one caller sees a user's join or leave and only that caller announces it.

All keys of a room live on the room's shard (`room_shard`, the shard of its channel-layer
group), so each script touches one Redis.
"""

from __future__ import annotations

from chatcluster.redis import get_redis, get_script, room_shard
from chatcluster.services.liveness import INSTANCE, LUA_COMMON, presence_entry

# ARGV: room, user, conn, held entry, instance. Returns {joined (0/1), members}: the
# joiner learns the room's list in the same round trip.
_JOIN = (
    LUA_COMMON
    + """
local room, user, conn, entry, instance = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('SADD', held_key(instance), entry)
local joined = add_presence(room, user, conn) and 1 or 0
return {joined, redis.call('SMEMBERS', room_key(room))}
"""
)

# ARGV: room, user, conn, held entry, instance. Returns 1 when its user left.
_LEAVE = (
    LUA_COMMON
    + """
local room, user, conn, entry, instance = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('SREM', held_key(instance), entry)
if drop_presence(room, user, conn) then return 1 end
return 0
"""
)


def room_key(room: str) -> str:
    return f"chat:online:{room}"


async def presence_join(*, room: str, user: str, conn: str, instance: str = INSTANCE) -> tuple[bool, list[str]]:
    """Hold `conn` in `room`; (whether `user` just arrived there, everyone present)."""
    entry = presence_entry(room=room, user=user, conn=conn)
    joined, members = await get_script(_JOIN, room_shard(room))(args=[room, user, conn, entry, instance])
    return bool(int(joined)), sorted(str(member) for member in members)


async def presence_leave(*, room: str, user: str, conn: str, instance: str = INSTANCE) -> bool:
    """Release `conn`; True when that was `user`'s last connection in `room`."""
    entry = presence_entry(room=room, user=user, conn=conn)
    return bool(int(await get_script(_LEAVE, room_shard(room))(args=[room, user, conn, entry, instance])))


async def presence_list(*, room: str) -> list[str]:
    return sorted(str(user) for user in await get_redis(room_shard(room)).smembers(room_key(room)))
