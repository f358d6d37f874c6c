"""Per-user publish budget shared by every node: a token bucket in Redis."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence

from chatcluster import metrics
from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.redis import get_script, user_shard

# One round trip for any number of takes: each KEYS entry takes one token from its
# bucket in turn (a user may appear several times). Returns, per entry, 0 when a token
# was taken, else the seconds until one is available. A key expires once its bucket
# would be full again.
TOKEN_BUCKET = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local waits = {}
for i, key in ipairs(KEYS) do
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil then tokens, at = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
  redis.call('HSET', key, 'tokens', tokens, 'at', now)
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
  waits[i] = tostring(wait)
end
return waits
"""


async def ratelimit_publish_many(*, user_ids: Sequence[int]) -> list[float]:
    """Take one publish token per entry of `user_ids`: per entry, 0 if taken, else seconds to wait."""
    if not chat_settings.CHAT_PUBLISH_RATE or not user_ids:
        return [0.0] * len(user_ids)
    # Each user's bucket lives on the user's shard: one user's publishes share one bucket
    # whichever node takes them. One script call per shard, all shards at once.
    by_shard: dict[int, list[int]] = defaultdict(list)
    for index, user_id in enumerate(user_ids):
        by_shard[user_shard(user_id)].append(index)
    now = time.time()

    async def take(shard: int, indexes: list[int]) -> list[str]:
        script = get_script(TOKEN_BUCKET, shard)
        keys = [f"chat:rate:publish:{user_ids[i]}" for i in indexes]
        return list(
            await script(keys=keys, args=[chat_settings.CHAT_PUBLISH_RATE, chat_settings.CHAT_PUBLISH_BURST, now])
        )

    shards = list(by_shard.items())
    answers = await asyncio.gather(*(take(shard, indexes) for shard, indexes in shards))
    waits = [0.0] * len(user_ids)
    for (_, indexes), answer in zip(shards, answers, strict=True):
        for i, wait in zip(indexes, answer, strict=True):
            waits[i] = float(wait)
    refused = sum(1 for wait in waits if wait > 0)
    if refused:
        metrics.RATE_LIMITED.inc(refused)
    return waits


def ratelimit_refusal(*, wait: float) -> ChatError:
    return ChatError("rate_limited", "too many messages; slow down", retry_after=round(wait, 3))


async def ratelimit_publish(*, user_id: int) -> None:
    """Take one publish token for `user_id`, or raise `rate_limited` with a retry-after."""
    (wait,) = await ratelimit_publish_many(user_ids=[user_id])
    if wait > 0:
        raise ratelimit_refusal(wait=wait)
