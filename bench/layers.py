"""Compare the two channels-redis layers under this project's delivery path, in one run.

For each layer it starts a real cluster (2 daphne nodes, a private or given Redis),
opens CONNS sockets spread over the nodes in ROOMS rooms, publishes at stepped rates and
reports deliveries/s, latency and loss. Run: `make bench` (or python bench/layers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402

from chatcluster.client import frames as wire  # noqa: E402
from tests.cluster import start_cluster  # noqa: E402


async def run_step(ports: list[int], tokens: list[str], rooms: int, rate: float, seconds: float) -> dict[str, float]:
    socks = []
    for i, token in enumerate(tokens):
        port = ports[i % len(ports)]
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}", max_queue=None)
        socks.append(ws)
    names = [f"bench-{int(time.time())}-{r}" for r in range(rooms)]
    for i, ws in enumerate(socks):
        await ws.send(wire.encode_subscribe(names[i % rooms], ref="s"), text=True)
    for ws in socks:
        while not isinstance(wire.decode(await ws.recv()), wire.Subscribed):
            pass
    latencies: list[float] = []
    received = 0
    stop = asyncio.Event()

    async def reader(ws: websockets.ClientConnection) -> None:
        nonlocal received
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            frame = wire.decode(text)
            if isinstance(frame, wire.Message):
                received += 1
                latencies.append(time.time() - float(frame.body.split()[0]))

    readers = [asyncio.create_task(reader(ws)) for ws in socks]
    publishers = socks[: len(ports) * rooms]  # one per room per node
    sent = 0
    started = time.monotonic()
    interval = 1 / rate
    while time.monotonic() - started < seconds:
        ws = publishers[sent % len(publishers)]
        room = names[(sent % len(publishers)) % rooms]
        await ws.send(wire.encode_publish(room, f"{time.time()} x"), text=True)
        sent += 1
        delay = started + sent * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    elapsed = time.monotonic() - started
    await asyncio.sleep(2)  # let in-flight deliveries land before counting loss
    stop.set()
    await asyncio.gather(*readers)
    for ws in socks:
        await ws.close()
    expected = sent * (len(tokens) / rooms)
    latencies.sort()
    return {
        "offered_msgs_s": rate,
        "deliveries_s": received / elapsed,
        "lost_pct": max(0.0, 100 * (1 - received / expected)) if expected else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--rates", default="40,80,160")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "layers.json")
    args = parser.parse_args()
    results = []
    env = {
        "CHAT_PUBLISH_RATE": "100000",
        "CHAT_PUBLISH_BURST": "100000",
        "CHAT_FRAMES_PUBLISH": "100000/100000",
        # One user opens every room of a run.
        "CHAT_ROOMS_PER_USER_PER_HOUR": "0",
        "LOG_LEVEL": "WARNING",
    }
    for layer in ("core", "pubsub"):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"[{layer}] starting a 2-node cluster…", flush=True)
            cluster = start_cluster(Path(tmp), nodes=2, env=dict(env, CHANNEL_LAYER=layer))
            try:
                tokens = cluster.tokens(*[f"bench{i}" for i in range(args.conns)])
                for rate in [float(r) for r in args.rates.split(",")]:
                    row = asyncio.run(
                        run_step([cluster.node_port(0), cluster.node_port(1)], tokens, args.rooms, rate, args.seconds)
                    )
                    row["layer"] = layer
                    results.append(row)
                    print(
                        f"[{layer}] {rate:>6.0f} msg/s offered -> {row['deliveries_s']:>8.0f} deliveries/s, "
                        f"lost {row['lost_pct']:.1f}%, p99 {row['p99_ms']:.0f} ms",
                        flush=True,
                    )
            finally:
                cluster.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\n{args.conns} sockets over 2 nodes in {args.rooms} rooms; generator on the same machine")
    print(f"{'layer':<8}{'offered msg/s':>14}{'deliveries/s':>14}{'lost %':>8}{'p50 ms':>8}{'p99 ms':>8}")
    for r in results:
        print(
            f"{r['layer']:<8}{r['offered_msgs_s']:>14.0f}{r['deliveries_s']:>14.0f}{r['lost_pct']:>8.1f}"
            f"{r['p50_ms']:>8.0f}{r['p99_ms']:>8.0f}"
        )
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
