"""Leases per node instance: presence and socket counts held by them, against a real private Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from chatcluster.redis import get_redis
from chatcluster.services.connections import connection_close, connection_open
from chatcluster.services.liveness import (
    HELD_PREFIX,
    LEASES_KEY,
    liveness_release,
    liveness_renew,
    liveness_restore,
    liveness_sweep,
    presence_entry,
    socket_entry,
)
from chatcluster.services.presence import presence_join, presence_leave, presence_list
from tests.redis_servers import RedisServer


@pytest.fixture
def redis_server(chat_conf: Any) -> Iterator[RedisServer]:
    """A Redis of this test's own: these tests flush it and lapse leases at will."""
    server = RedisServer().start()
    chat_conf.REDIS_URL = server.url
    yield server
    server.stop()


def name() -> str:
    return uuid.uuid4().hex[:8]


async def lapse(instance: str) -> None:
    """Make `instance`'s lease one that ran out a moment ago, as after a kill -9."""
    await get_redis().zadd(LEASES_KEY, {instance: time.time() - 0.01})


async def test_a_user_on_two_instances_leaves_once_when_the_last_lease_lapses(redis_server: RedisServer) -> None:
    room, a, b = name(), "node-a~1", "node-b~1"
    for instance in (a, b):
        await liveness_renew(instance=instance)
    assert await presence_join(room=room, user="ann", conn="a/1", instance=a) == (True, ["ann"])
    assert await presence_join(room=room, user="ann", conn="b/1", instance=b) == (False, ["ann"])
    await lapse(a)
    assert await liveness_sweep() == []
    assert await presence_list(room=room) == ["ann"]
    await lapse(b)
    assert await liveness_sweep() == [(room, "ann")]
    assert await liveness_sweep() == []
    assert await presence_list(room=room) == []
    # Nothing of either instance is left behind: no lease, no held set, no user key.
    assert await get_redis().keys("chat:*") == []


async def test_a_clean_leave_is_immediate_and_counted_once(redis_server: RedisServer) -> None:
    room = name()
    await liveness_renew()
    assert (await presence_join(room=room, user="bo", conn="c1"))[0]
    assert (await presence_join(room=room, user="cy", conn="c2")) == (True, ["bo", "cy"])
    assert await presence_leave(room=room, user="bo", conn="c1")
    assert not await presence_leave(room=room, user="bo", conn="c1")
    assert await presence_list(room=room) == ["cy"]


async def test_a_live_lease_is_never_swept_and_costs_one_command_per_renewal(redis_server: RedisServer) -> None:
    room = name()
    await liveness_renew()
    for i in range(200):
        await presence_join(room=room, user=f"u{i}", conn=f"c{i}")
    assert await liveness_sweep() == []  # loads the sweep script
    before = int((await get_redis().info("stats"))["total_commands_processed"])
    await liveness_renew()
    assert await liveness_sweep() == []
    after = int((await get_redis().info("stats"))["total_commands_processed"])
    # Redis counts the commands inside scripts too: renewal EVALSHA + ZSCORE + ZADD,
    # sweep EVALSHA + ZRANGEBYSCORE, and the INFO. Nothing per socket.
    assert after - before <= 6
    assert len(await presence_list(room=room)) == 200


async def test_sockets_of_a_lapsed_instance_stop_counting_after_sweep(
    redis_server: RedisServer, chat_conf: Any
) -> None:
    chat_conf.CHAT_MAX_SOCKETS_PER_USER = 1
    uid = uuid.uuid4().int % 10**9
    await liveness_renew(instance="dead~1")
    assert await connection_open(user_id=uid, conn="dead/1", instance="dead~1")
    assert not await connection_open(user_id=uid, conn="live/1")
    # Re-opening a counted connection is not a new one.
    assert await connection_open(user_id=uid, conn="dead/1", instance="dead~1")
    await lapse("dead~1")
    await liveness_sweep()
    assert await connection_open(user_id=uid, conn="live/1")
    await connection_close(user_id=uid, conn="live/1")
    assert await connection_open(user_id=uid, conn="live/2")


async def test_a_restart_with_data_loss_is_rebuilt_from_the_instances(redis_server: RedisServer) -> None:
    room = name()
    assert await liveness_renew() == [0]  # a first lease is a lapsed one: nothing to write yet
    assert await liveness_renew() == []
    entries = [presence_entry(room=room, user=u, conn=f"{u}/1") for u in ("dee", "eve")]
    entries.append(socket_entry(user_id=7, conn="dee/1"))
    for entry in entries[:2]:
        _, r, user, conn = entry.split("\n")
        await presence_join(room=r, user=user, conn=conn)
    redis_server.client().flushall()
    assert await liveness_renew() == [0]
    assert sorted(await liveness_restore(shard=0, entries=entries)) == [(room, "dee"), (room, "eve")]
    assert await presence_list(room=room) == ["dee", "eve"]
    assert await get_redis().smembers("chat:sockets:7") == {"dee/1"}
    # Restored entries are held again: a later lapse releases them all.
    from chatcluster.services.liveness import INSTANCE

    await lapse(INSTANCE)
    assert sorted(await liveness_sweep()) == [(room, "dee"), (room, "eve")]
    assert await get_redis().exists("chat:sockets:7") == 0


async def test_a_stalled_instance_that_was_swept_finds_out_on_renewal(redis_server: RedisServer) -> None:
    room = name()
    await liveness_renew()
    await presence_join(room=room, user="fay", conn="f/1")
    from chatcluster.services.liveness import INSTANCE

    await lapse(INSTANCE)
    assert await liveness_sweep() == [(room, "fay")]
    assert await liveness_renew() == [0]


async def test_malformed_held_entries_are_skipped_not_fatal(redis_server: RedisServer) -> None:
    room = name()
    await liveness_renew(instance="x~1")
    await presence_join(room=room, user="gus", conn="g/1", instance="x~1")
    await get_redis().sadd(f"{HELD_PREFIX}x~1", "garbage", "p\nonly-two", "c\n", "q\na\nb\nc")
    await lapse("x~1")
    assert await liveness_sweep() == [(room, "gus")]
    assert await get_redis().zscore(LEASES_KEY, "x~1") is None


async def test_a_room_slug_cannot_reach_the_liveness_keys(redis_server: RedisServer) -> None:
    # `#` is outside the slug alphabet, so no room's keys can be a lease or a held set.
    await liveness_renew()
    await presence_join(room="due", user="hal", conn="h/1")
    await presence_join(room="leases", user="hal", conn="h/2")
    assert await presence_list(room="due") == ["hal"]
    assert await get_redis().type(LEASES_KEY) == "zset"


async def test_a_clean_stop_releases_everything_at_once(redis_server: RedisServer) -> None:
    rooms = [name() for _ in range(3)]
    await liveness_renew()
    for r in rooms:
        for i in range(400):
            await presence_join(room=r, user=f"u{i}", conn=f"c{i}")
    left = await liveness_release()
    assert len(left) == 1200 and len(set(left)) == 1200
    assert await get_redis().keys("chat:*") == []


async def test_a_sweep_releases_a_large_instance_in_bounded_batches(redis_server: RedisServer) -> None:
    rooms = [name() for _ in range(12)]
    await liveness_renew(instance="big~1")
    await asyncio.gather(
        *(presence_join(room=r, user=f"u{i}", conn=f"c{i}", instance="big~1") for r in rooms for i in range(100))
    )
    await lapse("big~1")
    left: list[tuple[str, str]] = []
    for _ in range(3):
        left += await liveness_sweep()
    assert len(left) == 1200
    assert await liveness_sweep() == []


@pytest.fixture(scope="module")
def lossy_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two nodes and a Redis of their own, restarted empty by the test."""
    from tests.cluster import start_cluster
    from tests.conftest import CLUSTER_ENV

    running = start_cluster(
        tmp_path_factory.mktemp("lossy"), nodes=2, env=CLUSTER_ENV, private_redis=True, balancer="none"
    )
    yield running
    running.stop()


@pytest.mark.cluster
@pytest.mark.chaos
async def test_a_redis_restart_without_data_gets_presence_and_socket_counts_back_from_the_nodes(
    lossy_cluster: Any,
) -> None:
    import redis as sync_redis

    from tests.cluster import Client

    cluster = lossy_cluster
    ports = [cluster.node_port(0), cluster.node_port(1)]
    r = name()
    ta, tb, tc, td, te = cluster.tokens("rl-a", "rl-b", "rl-c", "rl-d", "rl-e")
    a, b = await Client.open(ports[0], ta), await Client.open(ports[1], tb)
    # rl-c is at the socket limit (5), across both nodes.
    tabs = [await Client.open(ports[i % 2], tc) for i in range(5)]
    gone = await Client.open(ports[0], td)
    for client in (a, b, *tabs, gone):
        await client.subscribe(r)
    await gone.close()  # left before the restart: must not come back
    try:
        sync_redis.Redis.from_url(cluster.redis_url).shutdown(nosave=True)
    except sync_redis.ConnectionError:
        pass  # the server hangs up as it goes
    expected = ["rl-a", "rl-b", "rl-c", "rl-e"]
    seen: list[str] = []

    async def presence_back() -> bool:
        nonlocal seen
        try:
            probe = await Client.open(ports[1], te)
            seen = (await probe.subscribe(r))["presence"]
            await probe.close()
        except Exception as exc:  # Redis is still away: the node answers unavailable
            seen = [repr(exc)]
        return seen == expected

    deadline = time.monotonic() + 20
    while not await presence_back():
        assert time.monotonic() < deadline, f"presence after the restart: {seen}"
        await asyncio.sleep(0.3)
    # The socket counts came back too: a sixth socket of rl-c is still refused.
    extra = await Client.open(ports[0], tc)
    assert await extra.closed(10) == 4429
    # A closed socket frees its place once its node has run the close (after the client's
    # close handshake returns): until then a new socket is still the sixth.
    await tabs[0].close()
    deadline = time.monotonic() + 5
    while True:
        sixth = await Client.open(ports[0], tc)
        try:
            answer = await sixth.subscribe(r)
            break
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4429, closed
            assert time.monotonic() < deadline, "the closed socket still counts after 5 s"
            await asyncio.sleep(0.1)
    assert answer["presence"] == ["rl-a", "rl-b", "rl-c"]
    for client in (a, b, sixth, *tabs[1:]):
        await client.close()
