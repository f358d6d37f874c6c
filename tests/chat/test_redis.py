"""Sharding over two real Redis servers: keys follow the channel layer's choice of shard."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chatcluster import broadcast
from chatcluster.broadcast import room_group
from chatcluster.redis import room_shard, shard_count, user_shard
from chatcluster.seams.channels_redis import group_shard_index
from chatcluster.services.connections import connection_open
from chatcluster.services.liveness import LEASES_KEY, liveness_renew, liveness_sweep
from chatcluster.services.presence import presence_join, presence_list
from chatcluster.services.ratelimit import ratelimit_publish
from chatcluster.services.typing import typing_allowed
from tests.redis_servers import RedisServer


@pytest.fixture
def shards(chat_conf: Any) -> Iterator[list[RedisServer]]:
    """Two fresh Redis servers; the app's clients and its channel layer shard over them."""
    servers = [RedisServer().start(), RedisServer().start()]
    chat_conf.REDIS_URL = [server.url for server in servers]
    yield servers
    for server in servers:
        server.stop()


def rooms_on(shard: int, count: int = 1) -> list[str]:
    """Room slugs that hash to `shard`."""
    out: list[str] = []
    while len(out) < count:
        slug = "s-" + uuid.uuid4().hex[:8]
        if room_shard(slug) == shard:
            out.append(slug)
    return out


async def sweep_until(count: int, timeout: float = 5) -> list[tuple[str, str]]:
    """Sweep until `count` users left (their instance's lease lapses after PRESENCE_TTL)."""
    left: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(left) < count:
        assert time.monotonic() < deadline, f"only {left} left within {timeout} s"
        left += await liveness_sweep()
        await asyncio.sleep(0.05)
    return left


async def test_a_rooms_shard_is_the_one_the_channel_layer_publishes_its_group_on(shards: list[RedisServer]) -> None:
    layer: Any = broadcast.layer()
    for _ in range(50):
        slug = uuid.uuid4().hex[:10]
        assert group_shard_index(layer, room_group(slug)) == room_shard(slug)
    await layer.flush()


def test_rooms_and_users_spread_over_every_shard(shards: list[RedisServer]) -> None:
    assert shard_count() == 2
    assert {room_shard(uuid.uuid4().hex) for _ in range(100)} == {0, 1}
    assert {user_shard(user_id) for user_id in range(100)} == {0, 1}


async def test_a_rooms_presence_lives_on_the_rooms_shard_only(shards: list[RedisServer]) -> None:
    for shard in (0, 1):
        (slug,) = rooms_on(shard)
        assert await presence_join(room=slug, user="ann", conn="c1") == (True, ["ann"])
        assert await presence_list(room=slug) == ["ann"]
        assert shards[shard].client().exists(f"chat:online:{slug}")
        assert not shards[1 - shard].client().exists(f"chat:online:{slug}")


async def test_leases_and_sweep_cover_every_shard(shards: list[RedisServer], chat_conf: Any) -> None:
    chat_conf.PRESENCE_TTL = 0.3
    slugs = rooms_on(0) + rooms_on(1)
    assert await liveness_renew(instance="gone~1") == [0, 1]
    for slug in slugs:
        await presence_join(room=slug, user="bob", conn="c1", instance="gone~1")
    for server in shards:
        assert server.client().zscore(LEASES_KEY, "gone~1") is not None
    assert sorted(await sweep_until(2)) == sorted((slug, "bob") for slug in slugs)


async def test_a_shard_that_is_down_does_not_stop_the_others_sweep(shards: list[RedisServer], chat_conf: Any) -> None:
    chat_conf.PRESENCE_TTL = 0.3
    (alive,) = rooms_on(0)
    await liveness_renew(instance="gone~2")
    await presence_join(room=alive, user="cy", conn="c1", instance="gone~2")
    shards[1].stop()
    assert await sweep_until(1) == [(alive, "cy")]


async def test_rate_buckets_and_socket_counts_live_on_the_users_shard(shards: list[RedisServer]) -> None:
    for user_id in (1, 2, 3, 4):
        await ratelimit_publish(user_id=user_id)
        assert await connection_open(user_id=user_id, conn="c1")
        home, other = shards[user_shard(user_id)].client(), shards[1 - user_shard(user_id)].client()
        assert home.exists(f"chat:rate:publish:{user_id}") and home.exists(f"chat:sockets:{user_id}")
        assert not other.exists(f"chat:rate:publish:{user_id}") and not other.exists(f"chat:sockets:{user_id}")


async def test_typing_throttles_live_on_the_rooms_shard(shards: list[RedisServer]) -> None:
    (slug,) = rooms_on(1)
    assert await typing_allowed(room=slug, user="dee")
    assert not await typing_allowed(room=slug, user="dee")
    assert shards[1].client().exists(f"chat:typing:{slug}\ndee")
