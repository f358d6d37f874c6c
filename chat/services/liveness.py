"""Liveness per node, not per socket: a node's lease holds everything its sockets hold.

A node process (an *instance*: a restarted node is a new one) renews one lease per Redis
shard every PRESENCE_TTL / 3 seconds, however many sockets it serves. Each presence entry
and socket count it writes is also recorded in its *held set* on the same shard. An idle
socket costs Redis nothing.

When a lease lapses (the node was killed, or stalled past the TTL), any node's sweep pops
the dead instance's held set and removes each entry it names, atomically per batch, so
each user whose last connection that was is announced `left` exactly once. A clean close
removes its own entries at once. When a node finds its lease lapsed or gone (Redis
restarted empty, or the node was swept while stalled), it writes everything it holds
again from its own sockets: the nodes are the record of who is connected, as the
database is of what was said.

Keys on every shard (room slugs never hold `#` or a newline, usernames never a newline,
so no slug can produce these names):
  chat:live:#leases           instance -> lease expiry (epoch seconds)
  chat:live:#held:<instance>  "p\\n<room>\\n<user>\\n<conn>" and "c\\n<user id>\\n<conn>"
  chat:online:<room>          users present in the room (the room's shard)
  chat:online:<room>\\n<user>  the user's connections in the room
  chat:sockets:<user id>      the user's open connections, cluster-wide (the user's shard)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from chatcluster import metrics
from chatcluster.conf import chat_settings
from chatcluster.redis import get_script, room_shard, shard_count, user_shard

logger = logging.getLogger(__name__)

LEASES_KEY = "chat:live:#leases"
HELD_PREFIX = "chat:live:#held:"

# Shared by every script that touches presence or socket counts.
LUA_COMMON = """
local LEASES = 'chat:live:#leases'
local function held_key(instance) return 'chat:live:#held:' .. instance end
local function room_key(room) return 'chat:online:' .. room end
local function user_key(room, user) return 'chat:online:' .. room .. '\\n' .. user end
local function sockets_key(uid) return 'chat:sockets:' .. uid end
local function split(entry)
  local parts = {}
  for part in string.gmatch(entry, '[^\\n]+') do parts[#parts + 1] = part end
  return parts
end
-- Drop one connection from a room; true when it was its user's last one there.
local function drop_presence(room, user, conn)
  local uk = user_key(room, user)
  redis.call('SREM', uk, conn)
  if redis.call('SCARD', uk) == 0 then
    return redis.call('SREM', room_key(room), user) == 1
  end
  return false
end
-- Add one connection to a room; true when its user was not there before.
local function add_presence(room, user, conn)
  redis.call('SADD', user_key(room, user), conn)
  return redis.call('SADD', room_key(room), user) == 1
end
-- Undo one held entry; returns the "room\\nuser" pair whose user left, or nil.
-- Malformed entries are skipped, never fatal: one bad entry must not stop a sweep.
local function release(entry)
  local parts = split(entry)
  if parts[1] == 'p' and #parts == 4 then
    if drop_presence(parts[2], parts[3], parts[4]) then return parts[2] .. '\\n' .. parts[3] end
  elseif parts[1] == 'c' and #parts == 3 then
    redis.call('SREM', sockets_key(parts[2]), parts[3])
  end
  return nil
end
"""

# ARGV: instance, expiry, now. Returns 1 when the lease had lapsed or was missing.
_RENEW = (
    LUA_COMMON
    + """
local prev = redis.call('ZSCORE', LEASES, ARGV[1])
redis.call('ZADD', LEASES, ARGV[2], ARGV[1])
if (not prev) or tonumber(prev) < tonumber(ARGV[3]) then return 1 end
return 0
"""
)

# ARGV: instance, then held entries. Writes them all again; returns the "room\\nuser"
# pairs whose user was not present before (they are announced as joined).
_RESTORE = (
    LUA_COMMON
    + """
local held = held_key(ARGV[1])
local joined = {}
for i = 2, #ARGV do
  local entry = ARGV[i]
  local parts = split(entry)
  if parts[1] == 'p' and #parts == 4 then
    redis.call('SADD', held, entry)
    if add_presence(parts[2], parts[3], parts[4]) then joined[#joined + 1] = parts[2] .. '\\n' .. parts[3] end
  elseif parts[1] == 'c' and #parts == 3 then
    redis.call('SADD', held, entry)
    redis.call('SADD', sockets_key(parts[2]), parts[3])
  end
end
return joined
"""
)

# ARGV: now, budget. Releases up to `budget` entries of instances whose lease lapsed;
# an instance's lease goes once its held set is empty. Returns the pairs that left.
_SWEEP = (
    LUA_COMMON
    + """
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = {}
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', '(' .. now, 'LIMIT', 0, 16)) do
  local held = held_key(instance)
  local entries = redis.call('SPOP', held, budget)
  for _, entry in ipairs(entries) do
    local pair = release(entry)
    if pair then left[#left + 1] = pair end
  end
  budget = budget - #entries
  if redis.call('SCARD', held) == 0 then redis.call('ZREM', LEASES, instance) end
  if budget <= 0 then break end
end
return left
"""
)

# ARGV: instance, budget. A clean stop: release up to `budget` of the instance's own
# entries at once; returns {done (0/1), left pairs...}.
_RELEASE = (
    LUA_COMMON
    + """
local held = held_key(ARGV[1])
local left = {}
for _, entry in ipairs(redis.call('SPOP', held, tonumber(ARGV[2]))) do
  local pair = release(entry)
  if pair then left[#left + 1] = pair end
end
if redis.call('SCARD', held) == 0 then
  redis.call('ZREM', LEASES, ARGV[1])
  return {1, left}
end
return {0, left}
"""
)

# Entries per script call: one call never blocks Redis for long.
BATCH = 500

# This process's identity in the leases. A node restarted with the same NODE_ID is a new
# instance, so the old one's entries are swept rather than taken over by mistake.
INSTANCE = f"{chat_settings.NODE_ID}~{uuid.uuid4().hex[:8]}"


def presence_entry(*, room: str, user: str, conn: str) -> str:
    return f"p\n{room}\n{user}\n{conn}"


def socket_entry(*, user_id: int, conn: str) -> str:
    return f"c\n{user_id}\n{conn}"


def split_pairs(entries: Iterable[Any]) -> list[tuple[str, str]]:
    return [tuple(str(entry).split("\n", 1)) for entry in entries]  # type: ignore[misc]


async def per_shard(where: str, calls: dict[int, Callable[[], Awaitable[Any]]]) -> dict[int, Any]:
    """Run one call per shard at once; a shard that fails is logged and left out.

    One Redis restarting must not stop the others' leases and sweeps: its entries are
    written again when its lease is found lapsed.
    """
    shards = list(calls)
    results = await asyncio.gather(*(calls[shard]() for shard in shards), return_exceptions=True)
    answered: dict[int, Any] = {}
    for shard, result in zip(shards, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            metrics.REDIS_ERRORS.labels(where).inc()
            logger.warning("liveness %s on redis shard %d failed: %r", where, shard, result)
        else:
            answered[shard] = result
    return answered


async def liveness_renew(*, instance: str = INSTANCE) -> list[int]:
    """Extend this instance's lease on every shard; returns the shards where it had lapsed."""
    now = time.time()
    expiry = now + chat_settings.PRESENCE_TTL

    def call(shard: int) -> Callable[[], Awaitable[Any]]:
        return lambda: get_script(_RENEW, shard)(args=[instance, expiry, now])

    answers = await per_shard("lease", {shard: call(shard) for shard in range(shard_count())})
    return sorted(shard for shard, lapsed in answers.items() if int(lapsed))


def held_shard(entry: str) -> int:
    """The shard an entry lives on: its room's for presence, its user's for a socket."""
    kind, first, _ = entry.split("\n", 2)
    return room_shard(first) if kind == "p" else user_shard(int(first))


async def liveness_restore(*, shard: int, entries: Sequence[str], instance: str = INSTANCE) -> list[tuple[str, str]]:
    """Write `entries` (this instance's, on `shard`) again; returns the (room, user) pairs that joined."""
    joined: list[tuple[str, str]] = []
    script = get_script(_RESTORE, shard)
    for start in range(0, len(entries), BATCH):
        joined += split_pairs(await script(args=[instance, *entries[start : start + BATCH]]))
    return joined


async def liveness_sweep() -> list[tuple[str, str]]:
    """Release the entries of instances whose lease lapsed, on every shard; returns who left."""
    now = time.time()

    def call(shard: int) -> Callable[[], Awaitable[Any]]:
        return lambda: get_script(_SWEEP, shard)(args=[now, BATCH])

    answers = await per_shard("sweep", {shard: call(shard) for shard in range(shard_count())})
    return [pair for answer in answers.values() for pair in split_pairs(answer)]


async def liveness_release(*, instance: str = INSTANCE) -> list[tuple[str, str]]:
    """A clean stop: drop everything `instance` holds on every shard now; returns who left."""
    left: list[tuple[str, str]] = []
    for shard in range(shard_count()):
        script = get_script(_RELEASE, shard)
        for _ in range(10_000):
            done, pairs = await script(args=[instance, BATCH])
            left += split_pairs(pairs)
            if int(done):
                break
    return left
