"""Presence: who is in which room, per user, across every node, kept in Redis.

Each connection in a room holds an entry scored by its expiry time. Nodes refresh their
entries on a jittered heartbeat; any node's sweep removes entries whose node went silent.
Each script runs atomically, so exactly one caller sees a user's join or leave and only
that caller announces it.

All keys of a room live on the room's shard (`room_shard`, the shard of its channel-layer
group), so each script touches one Redis. Each shard has its own `due` set and is swept
on its own.

Keys (room slugs and usernames never contain a newline):
  chat:presence:<room>          user -> latest expiry of any of the user's connections
  chat:presence:<room>\\n<user>  connection -> expiry
  chat:presence:due             "<room>\\n<user>" -> the user's expiry, for the sweep
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from django.conf import settings

from chat import metrics
from chat.redis import get_redis, get_script, room_shard, shard_count

logger = logging.getLogger(__name__)

_COMMON = """
local function room_key(room) return 'chat:presence:' .. room end
local function user_key(room, user) return 'chat:presence:' .. room .. '\\n' .. user end
-- Re-score a user from their freshest connection; true when they have none left.
local function settle(room, user, now)
  local uk = user_key(room, user)
  redis.call('ZREMRANGEBYSCORE', uk, '-inf', now)
  local top = redis.call('ZREVRANGE', uk, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', room_key(room), user)
    redis.call('ZREM', 'chat:presence:due', room .. '\\n' .. user)
    return true
  end
  redis.call('ZADD', room_key(room), top[2], user)
  redis.call('ZADD', 'chat:presence:due', top[2], room .. '\\n' .. user)
  return false
end
-- Add or refresh one connection; true when its user was not present before.
local function hold(room, user, conn, expiry, now)
  local prev = redis.call('ZSCORE', room_key(room), user)
  redis.call('ZADD', user_key(room, user), expiry, conn)
  redis.call('ZADD', room_key(room), 'GT', expiry, user)
  redis.call('ZADD', 'chat:presence:due', 'GT', expiry, room .. '\\n' .. user)
  return (not prev) or tonumber(prev) < now
end
"""

_JOIN = (
    _COMMON
    + """
local room, user, conn = ARGV[1], ARGV[2], ARGV[3]
local expiry, now = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', user_key(room, user), '-inf', now)
if hold(room, user, conn, expiry, now) then return 1 end
return 0
"""
)

# ARGV: now, then (room, user, conn, expiry) per entry. Returns the entries whose user
# had already been swept (the node stalled past the TTL): they are announced again.
_HEARTBEAT = (
    _COMMON
    + """
local now = tonumber(ARGV[1])
local rejoined = {}
for i = 2, #ARGV, 4 do
  if hold(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), now) then
    rejoined[#rejoined + 1] = ARGV[i] .. '\\n' .. ARGV[i + 1]
  end
end
return rejoined
"""
)

# Drop one connection, or with a grace period keep it a little longer so a quick
# reconnect does not show as left-then-joined. Returns 1 when its user left.
_LEAVE = (
    _COMMON
    + """
local room, user, conn = ARGV[1], ARGV[2], ARGV[3]
local now, grace_until = tonumber(ARGV[4]), tonumber(ARGV[5])
local present = redis.call('ZSCORE', room_key(room), user)
if not present then return 0 end
if grace_until > now then
  redis.call('ZADD', user_key(room, user), 'XX', 'LT', grace_until, conn)
else
  redis.call('ZREM', user_key(room, user), conn)
end
if settle(room, user, now) and tonumber(present) >= now then return 1 end
return 0
"""
)

_SWEEP = (
    _COMMON
    + """
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = {}
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', 'chat:presence:due', '-inf', now, 'LIMIT', 0, limit)) do
  local sep = string.find(entry, '\\n', 1, true)
  if settle(string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1), now) then
    left[#left + 1] = entry
  end
end
return left
"""
)

# Sweeps take this many users per round trip, so one sweep never blocks Redis for long.
SWEEP_BATCH = 500


def _split(entries: Iterable[str]) -> list[tuple[str, str]]:
    return [tuple(entry.split("\n", 1)) for entry in entries]  # type: ignore[misc]


async def presence_join(*, room: str, user: str, conn: str) -> bool:
    """Hold `conn` in `room`; True when `user` just arrived there."""
    now = time.time()
    script = get_script(_JOIN, room_shard(room))
    return bool(await script(args=[room, user, conn, now + settings.PRESENCE_TTL, now]))


async def presence_leave(*, room: str, user: str, conn: str, grace: float = 0) -> bool:
    """Release `conn`; True when that was `user`'s last connection in `room`."""
    now = time.time()
    script = get_script(_LEAVE, room_shard(room))
    return bool(await script(args=[room, user, conn, now, now + grace if grace > 0 else 0]))


async def _per_shard(where: str, calls: dict[int, Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run one call per shard at once; a shard that fails is logged and left out.

    One Redis restarting must not stop the others' heartbeats and sweeps: the hub's
    watchdog restores that shard's entries once it answers again.
    """
    shards = list(calls)
    results = await asyncio.gather(*(calls[shard]() for shard in shards), return_exceptions=True)
    answered = []
    for shard, result in zip(shards, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            metrics.REDIS_ERRORS.labels(where).inc()
            logger.warning("presence %s on redis shard %d failed: %r", where, shard, result)
        else:
            answered.append(result)
    return answered


async def presence_heartbeat(*, entries: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """Refresh (room, user, conn) entries; returns (room, user) pairs that had been swept."""
    if not entries:
        return []
    now = time.time()
    expiry = now + settings.PRESENCE_TTL
    args: dict[int, list[str | float]] = {}
    for room, user, conn in entries:
        args.setdefault(room_shard(room), [now]).extend((room, user, conn, expiry))

    def call(shard: int) -> Callable[[], Awaitable[Any]]:
        return lambda: get_script(_HEARTBEAT, shard)(args=args[shard])

    answers = await _per_shard("heartbeat", {shard: call(shard) for shard in args})
    return [pair for answer in answers for pair in _split(answer)]


async def presence_sweep() -> list[tuple[str, str]]:
    """Remove users whose every connection expired, on every shard; returns the (room, user) pairs that left."""
    now = time.time()

    def call(shard: int) -> Callable[[], Awaitable[Any]]:
        return lambda: get_script(_SWEEP, shard)(args=[now, SWEEP_BATCH])

    answers = await _per_shard("sweep", {shard: call(shard) for shard in range(shard_count())})
    return [pair for answer in answers for pair in _split(answer)]


async def presence_list(*, room: str) -> list[str]:
    users = await get_redis(room_shard(room)).zrangebyscore(f"chat:presence:{room}", time.time(), "+inf")
    return sorted(str(user) for user in users)
