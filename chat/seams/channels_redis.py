"""channels-redis internals: its shard hash, and the pub/sub layer's shards for a pipelined publish.

channels-redis sends every PUBLISH under its shard's lock, one round trip at a time, which
caps a node's broadcasts at one per round trip; `publish_pipelined` sends a batch in one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash


def consistent_hash(name: str, shards: int) -> int:
    """The shard channels-redis puts a channel or group channel called `name` on."""
    return int(_consistent_hash(name, shards))


def group_shard_index(layer: RedisPubSubChannelLayer, group: str) -> int:
    """The index, among this loop's shards, of the shard carrying `group`."""
    inner = layer._get_layer()
    return int(inner._shards.index(inner._get_shard(inner._get_group_channel_name(group))))


async def publish_pipelined(layer: RedisPubSubChannelLayer, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Send each (group, event) as `group_send` would, but in one pipelined round trip per shard."""
    inner = layer._get_layer()
    by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
    for group, event in events:
        channel = inner._get_group_channel_name(group)
        by_shard[inner._get_shard(channel)].append((channel, layer.serialize(event)))
    await asyncio.gather(*(_publish_on(shard, items) for shard, items in by_shard.items()))


async def _publish_on(shard: Any, items: list[tuple[str, bytes]]) -> None:
    shard._ensure_redis()
    async with shard._redis.pipeline(transaction=False) as pipe:
        for channel, payload in items:
            pipe.publish(channel, payload)
        await pipe.execute()
