"""Per-user publish budget shared by every node: a token bucket in Redis."""

from __future__ import annotations

import time

from django.conf import settings

from chat import metrics
from chat.errors import ChatError
from chat.redis import get_script, user_shard

# One round trip per publish. Returns 0 when a token was taken, else the seconds until
# one is available. The key expires once the bucket would be full again.
_TAKE = """
local key, rate, burst, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', key, 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


async def ratelimit_publish(*, user_id: int) -> None:
    """Take one publish token for `user_id`, or raise `rate_limited` with a retry-after."""
    if not settings.CHAT_PUBLISH_RATE:
        return
    # On the user's shard: one user's publishes share one bucket whichever node takes them.
    script = get_script(_TAKE, user_shard(user_id))
    wait = float(
        await script(
            keys=[f"chat:rate:publish:{user_id}"],
            args=[settings.CHAT_PUBLISH_RATE, settings.CHAT_PUBLISH_BURST, time.time()],
        )
    )
    if wait > 0:
        metrics.RATE_LIMITED.inc()
        raise ChatError("rate_limited", "too many messages; slow down", retry_after=round(wait, 3))
