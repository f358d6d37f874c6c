"""The node's asyncio Redis clients for presence, rate limits and the node registry.

`REDIS_URL` may name several independent Redis instances (shards). The channel layer puts
each group on the shard its hash of the name picks (chat/seams/channels_redis.py), and our
keys follow the same rule, so everything about one room (its pub/sub channel, presence, typing throttles) lives on one
shard and everything about one user (rate bucket, socket count) on one shard. The node
registry and the cluster-wide figures are tiny and live on shard 0.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.commands.core import AsyncScript

from chatcluster.conf import chat_settings
from chatcluster.seams.channels_redis import consistent_hash

# The name channels-redis gives a group's pub/sub channel: `<prefix>__group__<group>`
# with the layer's default prefix. A room's keys hash this same name, so they land on
# the shard that carries the room's broadcasts (tests/chat/test_redis.py checks it).
_GROUP_CHANNEL = "asgi__group__chat.room.{room}"

# Fail fast when Redis is gone: a publish should answer `unavailable` within a second
# or two, not hang on a dead connection.
_CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": chat_settings.REDIS_CONNECT_TIMEOUT,
    "socket_timeout": chat_settings.REDIS_SOCKET_TIMEOUT,
    # redis-py's default for a pool made here retries nothing (project/settings.py).
    "retry": chat_settings.REDIS_RETRY,
    "health_check_interval": 10,
}


# Clients per event loop, one per shard: test runners and management commands each
# bring their own loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[aioredis.Redis]] = weakref.WeakKeyDictionary()


def shard_count() -> int:
    return len(chat_settings.REDIS_LAYER_HOSTS)


def shard_of(name: str) -> int:
    """The shard channels-redis uses for a channel or group channel called `name`."""
    return consistent_hash(name, shard_count())


def room_shard(room: str) -> int:
    """The shard of a room's group, and so of its presence and typing keys."""
    return shard_of(_GROUP_CHANNEL.format(room=room))


def user_shard(user_id: int) -> int:
    """The shard of a user's rate bucket and socket count."""
    return shard_of(f"user:{user_id}")


def _connect(host: str | dict[str, Any]) -> aioredis.Redis:
    if isinstance(host, str):
        # A blocking pool: past REDIS_MAX_CONNECTIONS calls in flight, the next one waits
        # for a free connection (up to REDIS_POOL_TIMEOUT) instead of failing at once
        # with MaxConnectionsError, as redis-py's default pool does.
        pool = aioredis.BlockingConnectionPool.from_url(
            host,
            max_connections=chat_settings.REDIS_MAX_CONNECTIONS,
            timeout=chat_settings.REDIS_POOL_TIMEOUT,
            **_CLIENT_OPTIONS,
        )
        return aioredis.Redis(connection_pool=pool)
    options = {k: v for k, v in host.items() if k not in ("sentinels", "master_name")}
    sentinel = Sentinel(host["sentinels"], socket_timeout=2, socket_connect_timeout=2)
    return sentinel.master_for(
        host["master_name"], max_connections=chat_settings.REDIS_MAX_CONNECTIONS, **_CLIENT_OPTIONS, **options
    )


def all_redis() -> list[aioredis.Redis]:
    """This loop's client of every shard, in shard order."""
    loop = asyncio.get_running_loop()
    clients = _clients.get(loop)
    if clients is None:
        clients = _clients[loop] = [_connect(host) for host in chat_settings.REDIS_LAYER_HOSTS]
    return clients


def get_redis(shard: int = 0) -> aioredis.Redis:
    return all_redis()[shard]


_scripts: weakref.WeakKeyDictionary[aioredis.Redis, dict[str, AsyncScript]] = weakref.WeakKeyDictionary()


def get_script(source: str, shard: int = 0) -> AsyncScript:
    """A Lua script bound to this loop's client of `shard`, hashed once rather than on every call."""
    client = get_redis(shard)
    cache = _scripts.setdefault(client, {})
    script = cache.get(source)
    if script is None:
        script = cache[source] = client.register_script(source)
    return script
