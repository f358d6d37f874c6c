"""Admission: a node past its handshake rate answers 1013 at once; a reconnect storm ends whole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from chatcluster.admission import CLOSE_TRY_AGAIN, AdmissionMiddleware, TokenBucket
from tests.chaos import Follower, Publisher, wait_for
from tests.cluster import RunningCluster, start_cluster


def test_a_bucket_admits_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=1000, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.stamp -= 0.002  # two tokens' worth of time
    assert [bucket.take() for _ in range(3)] == [True, True, False]


@override_settings(CHATCLUSTER=dict(CHAT_ADMIT_RATE=0.001, CHAT_ADMIT_BURST=1))
async def test_past_the_rate_a_handshake_is_closed_with_1013_and_a_reason_before_the_app_runs() -> None:
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    middleware = AdmissionMiddleware(app)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware({"type": "websocket", "path": "/ws/1"}, receive, send)
    await middleware({"type": "websocket", "path": "/ws/2"}, receive, send)
    await middleware({"type": "http", "path": "/api/rooms"}, receive, send)
    assert reached == ["/ws/1", "/api/rooms"]
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": CLOSE_TRY_AGAIN, "reason": "node busy, try again"},
    ]


# Admission low enough that a storm of 500 meets it, so the clients' backoff is tested too.
STORM_ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    "CHAT_ADMIT_RATE": "400",
    "CHAT_ADMIT_BURST": "200",
    "CHAT_PUBLISH_RATE": "1000",
    "CHAT_PUBLISH_BURST": "1000",
    "CHAT_TAIL_CHECK": "0.5",
}
STORM = 500
ROOMS = 10


@pytest.fixture(scope="module")
def storm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    running = start_cluster(
        tmp_path_factory.mktemp("storm"), nodes=2, env=STORM_ENV, private_redis=True, balancer="none"
    )
    yield running
    running.stop()


@pytest.mark.cluster
@pytest.mark.chaos
async def test_a_storm_of_500_sockets_from_a_killed_node_ends_subscribed_and_caught_up(
    storm_cluster: RunningCluster,
) -> None:
    cluster = storm_cluster
    for index in range(2):
        cluster.wait_node_ready(index)
    victim, survivor = cluster.node_port(0), cluster.node_port(1)
    rooms = ["st-" + uuid.uuid4().hex[:8] for _ in range(ROOMS)]
    tokens = cluster.tokens(*(f"storm{i}" for i in range(STORM)), *(f"stpub{i}" for i in range(ROOMS)))
    # Every follower starts on the victim; once it is gone they all come to the survivor.
    followers = [Follower(f"f{i}", tokens[i], [victim] + [survivor] * 50, rooms[i % ROOMS]) for i in range(STORM)]
    publishers = [Publisher(f"p{i}", tokens[STORM + i], [survivor], rooms[i], interval=0.1) for i in range(ROOMS)]
    stop_following, stop_publishing = asyncio.Event(), asyncio.Event()
    following = [asyncio.create_task(f.run(stop_following)) for f in followers]
    publishing: list[asyncio.Task[None]] = []
    try:
        await wait_for(lambda: all(f.ready.is_set() for f in followers), 60, "every follower subscribed")
        publishing = [asyncio.create_task(p.run(stop_publishing)) for p in publishers]
        await wait_for(lambda: all(len(p.acked) >= 5 for p in publishers), 20, "traffic before the kill")
        acked_before = sum(len(p.acked) for p in publishers)
        killed_at = time.monotonic()
        cluster.kill_node(0)
        # Everyone is back once each has a `subscribed` answer after the kill.
        await wait_for(
            lambda: all(f.subscribed_at[-1] > killed_at for f in followers),
            30,
            lambda: (
                f"{sum(f.subscribed_at[-1] > killed_at for f in followers)} of {STORM} resubscribed; not: "
                + "; ".join(f.describe() for f in followers if f.subscribed_at[-1] <= killed_at)[:3000]
            ),
        )
        back = sorted(f.subscribed_at[-1] - killed_at for f in followers)
        acked_during = sum(len(p.acked) for p in publishers) - acked_before
        stop_publishing.set()
        await asyncio.gather(*publishing)
        last = {p.room: max(p.acked.values()) for p in publishers}
        for p in publishers:
            # One stored message per publish: seqs 1..n in the room, no repeats.
            assert sorted(p.acked.values()) == list(range(1, len(p.acked) + 1)), p.name
        await wait_for(
            lambda: all(f.complete_upto(last[f.room]) for f in followers),
            30,
            lambda: "; ".join(f.describe() for f in followers if not f.complete_upto(last[f.room]))[:3000],
        )
        lost = sum(1 for f in followers if f.delivered != list(range(1, last[f.room] + 1)))
        codes = Counter(code for f in followers for code in f.close_codes)
        print(
            f"storm of {STORM}: resubscribed p50 {back[STORM // 2]:.2f} s, p99 {back[int(STORM * 0.99)]:.2f} s,"
            f" all {back[-1]:.2f} s; {acked_during} publishes acked meanwhile; close codes {dict(codes)}"
        )
        assert lost == 0
        # The bench's bar is 5 s for 1,000; here the 500 clients share the two cores.
        assert back[-1] <= 15, f"the last client was back after {back[-1]:.1f} s"
        # 1011 is a bug; 1013 (busy) and 1006 (the kill) are expected.
        assert set(codes) <= {1006, CLOSE_TRY_AGAIN, None}, codes
    finally:
        stop_following.set()
        stop_publishing.set()
        await asyncio.gather(*following, *publishing, return_exceptions=True)
    cluster.wait_node_ready(0)
