"""Recovery figures, measured on a real 3-node cluster in one run.

1. Reconnect and catch up: CLIENTS sockets spread over 3 nodes in ROOMS rooms while
   publishers write on the other nodes; `kill -9` one node; time until each of its
   clients is subscribed again with everything it missed, and a check that every client
   ends with every acked seq exactly once.
2. A stalled client: node RSS while one subscriber of a busy room stops reading, with
   the default SEND_QUEUE_MAX and with the limit off, side by side.

Run: `python bench/recovery.py` (part of `make bench`). Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from tests.chaos import Follower, Publisher, percentile, wait_for  # noqa: E402
from tests.chat.test_chaos import node_metric, stalled_socket  # noqa: E402
from tests.cluster import RunningCluster, start_cluster  # noqa: E402

ENV = {
    "CHAT_PUBLISH_RATE": "100000",
    "CHAT_PUBLISH_BURST": "100000",
    "CHAT_FRAMES_PUBLISH": "100000/100000",
    # One user opens every room of a run.
    "CHAT_ROOMS_PER_USER_PER_HOUR": "0",
    "LOG_LEVEL": "WARNING",
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def reconnect_after_kill(cluster: RunningCluster, clients: int, rooms: int) -> dict[str, float]:
    ports = [cluster.node_port(i) for i in range(3)]
    names = [f"rec-{int(time.time())}-{r}" for r in range(rooms)]
    tokens = cluster.tokens(*[f"rec{i}" for i in range(clients + rooms)])
    followers = [
        Follower(f"f{i}", tokens[i], ports[i % 3 :] + ports[: i % 3], names[i % rooms]) for i in range(clients)
    ]
    publishers = [
        Publisher(f"p{r}", tokens[clients + r], [ports[1 + r % 2]], names[r], interval=0.2) for r in range(rooms)
    ]
    stop_following, stop_publishing = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(f.run(stop_following)) for f in followers]
    await wait_for(lambda: all(f.ready.is_set() for f in followers), 60, "every client subscribed")
    print(f"  {clients} clients subscribed; publishing in {rooms} rooms", flush=True)
    publishing = [asyncio.create_task(p.run(stop_publishing)) for p in publishers]
    await wait_for(lambda: all(len(p.acked) >= 5 for p in publishers), 30, "traffic")
    victims = [f for i, f in enumerate(followers) if i % 3 == 0]
    killed_at = time.monotonic()
    cluster.kill_node(0)
    print(f"  kill -9 node1 ({len(victims)} clients)", flush=True)
    await wait_for(lambda: all(len(f.subscribed_at) >= 2 for f in victims), 60, "victims subscribed again")
    back = [f.subscribed_at[1] - killed_at for f in victims]
    await asyncio.sleep(1)  # a second more of traffic after everyone is back
    stop_publishing.set()
    await asyncio.gather(*publishing)
    last = {p.room: max(p.acked.values()) for p in publishers}
    await wait_for(lambda: all(f.complete_upto(last[f.room]) for f in followers), 60, "every client complete")
    stop_following.set()
    await asyncio.gather(*tasks)
    complete = all(f.delivered == list(range(1, last[f.room] + 1)) for f in followers)
    return {
        "clients": clients,
        "moved": len(victims),
        "p50_s": percentile(back, 0.5),
        "p95_s": percentile(back, 0.95),
        "all_back_s": max(back),
        "every_client_complete": complete,
        "messages": sum(last.values()),
    }


async def stalled_client(cluster: RunningCluster, seconds: float) -> dict[str, float]:
    ports = [cluster.node_port(i) for i in range(3)]
    room = f"stall-{int(time.time())}"
    tokens = cluster.tokens("stall-slow", "stall-fast", *[f"stall-p{i}" for i in range(4)])
    follower = Follower("fast", tokens[1], [ports[0]], room)
    publishers = [
        Publisher(f"p{i}", tokens[2 + i], [ports[1 + i % 2]], room, interval=0, padding=3800) for i in range(4)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(follower.run(stop))]
    await wait_for(follower.ready.is_set, 20, "follower subscribed")
    tasks += [asyncio.create_task(p.run(stop)) for p in publishers]
    await wait_for(lambda: sum(len(p.acked) for p in publishers) >= 200, 30, "traffic")
    pid = cluster.cluster.pid("node1")
    before = rss_mb(pid)
    sent_before = sum(len(p.acked) for p in publishers)
    sock = await stalled_socket(ports[0], tokens[0], room)
    peak, started = before, time.monotonic()
    while time.monotonic() - started < seconds:
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.1)
    after = rss_mb(pid)
    sent = sum(len(p.acked) for p in publishers) - sent_before
    stop.set()
    await asyncio.gather(*tasks)
    sock.close()
    return {
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "rss_end_mb": after,
        "messages_while_stalled": sent,
        "stalled_client_closed": node_metric(cluster, 0, "chat_send_queue_closes_total") > 0,
    }


def with_cluster(env: dict[str, str], work: object) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp), env=env, private_redis=True)
        try:
            return asyncio.run(work(cluster))  # type: ignore[operator]
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--stall-seconds", type=float, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recovery.json")
    args = parser.parse_args()

    print("[1/3] kill -9 one of three nodes under traffic", flush=True)
    kill = with_cluster(ENV, lambda c: reconnect_after_kill(c, args.clients, args.rooms))
    print(f"[2/3] one stalled client for {args.stall_seconds:.0f} s, SEND_QUEUE_MAX=1000 (default)", flush=True)
    limited = with_cluster(dict(ENV, SEND_QUEUE_MAX="1000"), lambda c: stalled_client(c, args.stall_seconds))
    print("[3/3] the same with the limit off (SEND_QUEUE_MAX=10**9)", flush=True)
    unlimited = with_cluster(dict(ENV, SEND_QUEUE_MAX=str(10**9)), lambda c: stalled_client(c, args.stall_seconds))

    results = {"kill": kill, "stall_limited": limited, "stall_unlimited": unlimited}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nReconnect after kill -9 ({kill['moved']} of {kill['clients']} clients on the killed node):")
    print(f"  p50 {kill['p50_s']:.2f} s   p95 {kill['p95_s']:.2f} s   all back, caught up: {kill['all_back_s']:.2f} s")
    print(f"  every client holds every acked seq once, in order: {kill['every_client_complete']}")
    print("\nNode RSS with one client that stops reading in a busy room (~4 KB frames):")
    print(f"  {'':<22}{'before':>10}{'peak':>10}{'end':>10}{'messages':>10}  closed with 1013")
    for name, row in (("SEND_QUEUE_MAX=1000", limited), ("no limit", unlimited)):
        print(
            f"  {name:<22}{row['rss_before_mb']:>9.1f}M{row['rss_peak_mb']:>9.1f}M{row['rss_end_mb']:>9.1f}M"
            f"{row['messages_while_stalled']:>10}  {row['stalled_client_closed']}"
        )
    growth_limited = limited["rss_peak_mb"] - limited["rss_before_mb"]
    growth_unlimited = unlimited["rss_peak_mb"] - unlimited["rss_before_mb"]
    print(f"  growth: {growth_limited:.1f} MB with the limit, {growth_unlimited:.1f} MB without")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
