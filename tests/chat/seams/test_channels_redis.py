"""chat/seams/channels_redis.py: the channels-redis internals it reaches still exist and behave."""

from __future__ import annotations

import uuid

from channels_redis import utils
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection

from chatcluster.conf import chat_settings
from chatcluster.seams import channels_redis
from tests.chat.seams.checks import has, params, source_has

PIPELINE = "the pipelined publish in chat/seams/channels_redis.py (chat/broadcast.py's publish_messages)"
SHARDS = "the room and user shards of chat/redis.py"


def test_the_shard_hash_is_still_there() -> None:
    has(utils, "_consistent_hash", needed_by=SHARDS)
    params(utils._consistent_hash, ["value", "ring_size"], needed_by=SHARDS)
    assert channels_redis.consistent_hash("asgi__group__chat.room.x", 1) == 0
    assert {channels_redis.consistent_hash(f"room {i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_the_pubsub_layer_still_has_its_loop_layer_shards_and_connections() -> None:
    has(RedisPubSubChannelLayer, "_get_layer", needed_by=PIPELINE)
    has(RedisPubSubChannelLayer, "serialize", needed_by=PIPELINE)
    has(RedisPubSubLoopLayer, "_get_shard", needed_by=PIPELINE)
    has(RedisPubSubLoopLayer, "_get_group_channel_name", needed_by=PIPELINE)
    source_has(RedisPubSubLoopLayer.__init__, "self._shards", needed_by=f"{PIPELINE} and {SHARDS}")
    has(RedisSingleShardConnection, "_ensure_redis", needed_by=PIPELINE)
    source_has(RedisSingleShardConnection._ensure_redis, "self._redis =", needed_by=PIPELINE)


async def test_a_pipelined_publish_reaches_a_group_member_as_group_send_would() -> None:
    layer = RedisPubSubChannelLayer(hosts=chat_settings.REDIS_LAYER_HOSTS)
    group = f"seam.{uuid.uuid4().hex}"
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        assert channels_redis.group_shard_index(layer, group) == channels_redis.consistent_hash(
            f"asgi__group__{group}", len(chat_settings.REDIS_LAYER_HOSTS)
        )
        await channels_redis.publish_pipelined(layer, [(group, {"type": "seam.test", "n": 1})])
        assert await layer.receive(channel) == {"type": "seam.test", "n": 1}
    finally:
        await layer.flush()
