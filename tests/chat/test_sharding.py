"""A real cluster sharded over two Redis servers: delivery, spread, and one shard restarting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from channels_redis.utils import _consistent_hash

from chatcluster.cluster import Cluster
from tests.chaos import Follower, Publisher, Traffic, wait_for
from tests.cluster import Client, RunningCluster, start_cluster
from tests.redis_servers import RedisServer

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

SHARD_ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    "DRAIN_GRACE": "1",
    "CHAT_PUBLISH_RATE": "1000",
    "CHAT_PUBLISH_BURST": "1000",
    "CHAT_TAIL_CHECK": "0.5",
}


@pytest.fixture(scope="module")
def shards() -> Iterator[list[RedisServer]]:
    servers = [RedisServer().start(), RedisServer().start()]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory, shards: list[RedisServer]) -> Iterator[RunningCluster]:
    """Two nodes whose REDIS_URL names both servers."""
    running = start_cluster(
        tmp_path_factory.mktemp("sharded"),
        nodes=2,
        env=SHARD_ENV,
        redis_url=",".join(server.url for server in shards),
    )
    yield running
    running.stop()


USERS = ["sh-reader", "sh-writer", "shr-f1", "shr-f2", "shr-f3", "shr-f4", "shr-p1", "shr-p2"]


@pytest.fixture(scope="module")
def tokens(sharded: RunningCluster) -> dict[str, str]:
    """Every user's token from one `chat_token` run (each run costs a Django start)."""
    return dict(zip(USERS, sharded.tokens(*USERS), strict=True))


def group_channel(room: str) -> str:
    return f"asgi__group__chat.room.{room}"


def room_on(shard: int) -> str:
    """A fresh room slug whose group channel-layer hashes to `shard` of two."""
    while True:
        slug = "sh-" + uuid.uuid4().hex[:8]
        if _consistent_hash(group_channel(slug), 2) == shard:
            return slug


def test_runcluster_starts_one_private_redis_per_shard(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = Cluster(nodes=1, port=1, redis_shards=2, run_dir=tmp_path_factory.mktemp("conf"))
    conf = cluster.supervisor_conf()
    assert "[program:redis]" in conf and "[program:redis1]" in conf
    assert cluster.node_env()["REDIS_URL"] == ",".join(f"redis://127.0.0.1:{p}/0" for p in cluster.redis_ports)


async def test_messages_cross_nodes_in_rooms_on_either_shard(
    sharded: RunningCluster, shards: list[RedisServer], tokens: dict[str, str]
) -> None:
    rooms = [room_on(0), room_on(1)]
    tr, tp = tokens["sh-reader"], tokens["sh-writer"]
    reader = await Client.open(sharded.node_port(0), tr)
    writer = await Client.open(sharded.node_port(1), tp)
    for r in rooms:
        await reader.subscribe(r)
        await writer.send(type="publish", room=r, body=f"hello {r}", ref=r)
        assert (await writer.until(lambda f, r=r: f.get("ref") == r))["type"] == "ack"
        message = await reader.until(lambda f, r=r: f["type"] == "message" and f["room"] == r)
        assert message["body"] == f"hello {r}"
    # Each room's pub/sub channel and presence keys are on its own shard, not the other.
    for shard, r in enumerate(rooms):
        home, other = shards[shard].client(), shards[1 - shard].client()
        assert group_channel(r) in home.pubsub_channels() and group_channel(r) not in other.pubsub_channels()
        assert home.smembers(f"chat:online:{r}") == {"sh-reader"}
        assert not other.exists(f"chat:online:{r}")
    await reader.close()
    await writer.close()


async def test_one_shard_restarting_empty_recovers_like_a_single_redis(
    sharded: RunningCluster, shards: list[RedisServer], tokens: dict[str, str]
) -> None:
    broken, steady = room_on(0), room_on(1)
    ports = [sharded.node_port(0), sharded.node_port(1)]
    rooms = [broken, steady]
    followers = [Follower(f"f{i}", tokens[f"shr-f{i + 1}"], [ports[i % 2]], rooms[i // 2]) for i in range(4)]
    publishers = [Publisher(f"p{i}", tokens[f"shr-p{i + 1}"], [ports[1 - i]], rooms[i], interval=0.03) for i in (0, 1)]
    traffic = await Traffic.start(followers, publishers)
    await wait_for(lambda: all(len(p.acked) >= 10 for p in publishers), 15, "traffic before the restart")
    shards[0].shutdown_nosave()
    before = {p.name: len(p.acked) for p in publishers}
    shards[0].start()
    # Publishing goes on in both rooms.
    await wait_for(lambda: all(len(p.acked) >= before[p.name] + 20 for p in publishers), 20, "publishes after")
    # The nodes put their users back into the emptied shard's presence.
    await wait_for(
        lambda: shards[0].client().smembers(f"chat:online:{broken}") >= {"shr-f1", "shr-f2"},
        10,
        "presence rebuilt on the restarted shard",
    )
    traffic.stop_publishing.set()
    await asyncio.gather(*traffic.publishing)
    for follower in followers:
        # Each room has its own seqs: check a follower against its room's publisher.
        publisher = publishers[0] if follower.room == broken else publishers[1]
        acked = sorted(publisher.acked.values())
        assert acked == list(range(1, len(acked) + 1)), follower.room
        count = len(acked)
        await wait_for(lambda f=follower, n=count: f.complete_upto(n), 15, follower.describe)
        assert follower.delivered == acked, follower.name
        # Nobody was disconnected: the nodes repaired what the restart lost.
        assert follower.connects == 1, follower.name
    await traffic.stop()
