"""The node's asyncio Redis client for presence, rate limits and the node registry."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript

# One client per event loop: test runners and management commands each bring their own.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def get_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            # Fail fast when Redis is gone: a publish should answer `unavailable`
            # within a second or two, not hang on a dead connection.
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=10,
        )
        _clients[loop] = client
    return client


_scripts: weakref.WeakKeyDictionary[aioredis.Redis, dict[str, AsyncScript]] = weakref.WeakKeyDictionary()


def get_script(source: str) -> AsyncScript:
    """A Lua script bound to this loop's client, hashed once rather than on every call."""
    client = get_redis()
    cache = _scripts.setdefault(client, {})
    script = cache.get(source)
    if script is None:
        script = cache[source] = client.register_script(source)
    return script
