"""A reconnect storm: `kill -9` one of two nodes under traffic; its clients move to the other.

Ours only (the references keep no seq and have no `since`: nothing to recover with).
Two nodes run as plain `manage.py runnode` processes (systems.start_nodes), so nothing
restarts the one killed. Then:
  1. CLIENTS sockets connect to node A's port directly, each subscribed to one of ROOMS
     rooms; on node B one publisher per room, also subscribed to its room;
  2. the publishers publish RATE messages/s in all, spread over the rooms, each with an
     idempotency `key`; every ack's (room, seq) and its publish-to-ack time are kept;
  3. after PRE seconds, node A gets SIGKILL. Each of its clients does what
     chat/static/chatcluster/client.js does: on a drop it waits a full-jitter backoff
     (random x min(10 s, 0.5 s x 2^attempt); 1012 would be 0-300 ms), reconnects (to node
     B, where a balancer would send it), re-subscribes each room with `since` = the last
     contiguous seq it holds, drops repeats by seq, holds back out-of-order messages and
     repairs a gap by subscribing again with `since`; its attempt count goes back to 0
     once every room is caught up;
  4. a client is back when it is subscribed again on the new socket AND holds every seq
     up to the room's seq in that `subscribed` answer. Reported: seconds from the kill
     until 50/99/100 % of the clients are back, connect attempts, handshake failures and
     close codes, and node B's ack rate and publish-to-ack p99 before and during the storm;
  5. publishing goes on for AFTER seconds once all are back (or STORM_LIMIT passed), then
     stops; after a drain, every acked (room, seq) must be held by every subscriber of the
     room that subscribed before it: the count of those never received must be 0.
Every loop is bounded in time and count; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import time
from collections import Counter
from typing import Any

from bench.perfkit.loadgen import MAX_BURST, TICK
from bench.perfkit.measure import CORES, cpu_seconds, quantile
from bench.perfkit.stormclient import Client, Frame, backoff
from bench.perfkit.systems import Target
from chatcluster.client import frames as wire

# A publish answered `unavailable` (or `rate_limited`) is sent again with its key, this often at most.
PUBLISH_TRIES = 5
SETUP_INFLIGHT = 200
SETUP_LIMIT = 120.0
PRE = 5.0
STORM_LIMIT = 60.0
AFTER = 2.0
DRAIN_LIMIT = 20.0


class Storm:
    """The clients, the publishers, and what they saw."""

    def __init__(self, fallback_port: int) -> None:
        self.fallback_port = fallback_port
        self.killed_ns = 0
        self.errors: Counter[str] = Counter()
        self.handshake_failures: Counter[str] = Counter()
        self.close_codes: Counter[str] = Counter()
        self.node_ports: dict[int, str] = {}
        self.fatal = 0
        self.repeats = 0
        self.repairs = 0
        self.not_recovered = 0
        self.resets = 0
        self.pending: dict[str, tuple[str, int]] = {}  # ref -> (room, sent ns)
        # (room, seq, sent ns, acked ns) of every acked publish
        self.acks: list[tuple[str, int, int, int]] = []
        self.publish_errors: Counter[str] = Counter()
        self.retries = 0
        # ref -> (publisher, frame, tries) of every publish not yet acked, to send again
        self.unacked: dict[str, tuple[Client, bytes, int]] = {}

    def node_name(self, port: int) -> str:
        return self.node_ports.get(port, str(port))

    def on_ack(self, f: Frame) -> None:
        sent = self.pending.pop(f.ref, None)
        self.unacked.pop(f.ref, None)
        if sent is not None:
            self.acks.append((f.room or sent[0], f.seq, sent[1], time.perf_counter_ns()))

    def on_error(self, f: Frame) -> bool:
        """Count a publish's error, and send it again as client.js does; False when not a publish's."""
        if f.ref not in self.pending:
            return False
        self.publish_errors[f.code] += 1
        again = self.unacked.get(f.ref)
        if f.code in ("unavailable", "rate_limited") and again is not None and again[2] < PUBLISH_TRIES:
            # Same key: if the first try was stored after all, the retry gets its seq.
            self.unacked[f.ref] = (again[0], again[1], again[2] + 1)
            asyncio.get_running_loop().call_later(0.5 + backoff(2), self.resend, f.ref)
        else:
            self.pending.pop(f.ref, None)
            self.unacked.pop(f.ref, None)
        return True

    def resend(self, ref: str) -> None:
        again = self.unacked.get(ref)
        if again is None:
            return
        publisher, frame, _ = again
        if publisher.link is None:
            self.publish_errors["retry on a closed socket"] += 1
            self.pending.pop(ref, None)
            self.unacked.pop(ref, None)
            return
        self.retries += 1
        publisher.send(frame)


async def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def publish(storm: Storm, publishers: list[Client], rate: float, stop: asyncio.Event, run: str) -> int:
    """RATE messages/s over the publishers' rooms, round robin, each with its own key."""
    sent = 0
    started = time.perf_counter()
    while not stop.is_set():
        elapsed = time.perf_counter() - started
        for _ in range(min(MAX_BURST, int(elapsed * rate) + 1 - sent)):
            pub = publishers[sent % len(publishers)]
            sent += 1
            room = next(iter(pub.rooms))
            if pub.link is None:
                storm.publish_errors["socket closed"] += 1
                continue
            key = f"{run}-{sent}"
            frame = wire.encode_publish(room, f"m{sent}", key=key, ref=key)
            storm.pending[key] = (room, time.perf_counter_ns())
            storm.unacked[key] = (pub, frame, 1)
            pub.send(frame)
        await asyncio.sleep(TICK)
    return sent


def ack_figures(acks: list[tuple[str, int, int, int]], start_ns: int, end_ns: int) -> dict[str, float]:
    """Acks that arrived in [start, end): their rate, and publish-to-ack of those sent in it."""
    seconds = max(1e-9, (end_ns - start_ns) / 1e9)
    arrived = [a for a in acks if start_ns <= a[3] < end_ns]
    waits = [(a[3] - a[2]) / 1e6 for a in acks if start_ns <= a[2] < end_ns]
    return {
        "seconds": seconds,
        "acks": len(arrived),
        "ack_rate": len(arrived) / seconds,
        "ack_p50_ms": quantile(waits, 0.5),
        "ack_p99_ms": quantile(waits, 0.99),
        "ack_max_ms": quantile(waits, 1.0),
    }


async def measure_storm(target: Target, args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Fill `result` as the phases finish."""
    node_a, node_b = target.ports
    pid_a, pid_b = target.pids
    run = f"st{int(time.time()) % 100000}"
    rooms = [f"storm-{run}-{r}" for r in range(args.storm_rooms)]
    storm = Storm(fallback_port=node_b)
    storm.node_ports = {node_a: "A", node_b: "B"}
    clients = [Client(storm, target.tokens[i], [rooms[i % len(rooms)]], node_a) for i in range(args.storm_clients)]
    publishers = [Client(storm, target.tokens[args.storm_clients + r], [room], node_b) for r, room in enumerate(rooms)]
    everyone = clients + publishers
    result.update(clients=len(clients), rooms=len(rooms), rate=args.storm_rate)
    stop_publishing = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    publishing: asyncio.Task[int] | None = None
    try:
        # 1. Everyone connected and subscribed; bounded handshakes in flight while setting up.
        limit = asyncio.Semaphore(SETUP_INFLIGHT)
        end = time.monotonic() + SETUP_LIMIT + STORM_LIMIT + PRE + AFTER + DRAIN_LIMIT + 30
        started, started_ns = time.perf_counter(), time.perf_counter_ns()
        tasks = [asyncio.create_task(c.run(end, limit)) for c in everyone]
        await wait_until(lambda: all(c.ready.is_set() for c in everyone), SETUP_LIMIT)
        ready = [c for c in clients if c.ready.is_set()]
        result["subscribed_on_a"] = len(ready)
        result["setup_s"] = time.perf_counter() - started
        setup = [(c.ready_ns - started_ns) / 1e9 for c in ready]
        result["setup_ready_p50_s"], result["setup_ready_max_s"] = quantile(setup, 0.5), quantile(setup, 1.0)
        print(
            f"[storm] {len(ready)}/{len(clients)} clients subscribed on node A, "
            f"{sum(p.ready.is_set() for p in publishers)}/{len(publishers)} publishers on node B, "
            f"in {result['setup_s']:.1f} s (clients ready p50 {result['setup_ready_p50_s']:.1f} s, "
            f"last {result['setup_ready_max_s']:.1f} s)",
            flush=True,
        )
        if not ready or not all(p.ready.is_set() for p in publishers):
            raise RuntimeError("the storm's sockets could not all subscribe")
        # Attempts and codes of the setup are not the storm's.
        result["setup_handshake_failures"] = dict(storm.handshake_failures)
        result["setup_close_codes"] = dict(storm.close_codes)
        storm.handshake_failures.clear()
        storm.close_codes.clear()
        attempts_before = {id(c): c.attempts for c in clients}

        # 2. Steady publishing from node B.
        publishing = asyncio.create_task(
            publish(storm, publishers, args.storm_rate, stop_publishing, run), name="publish"
        )
        await asyncio.sleep(PRE)

        # 3. kill -9 node A.
        cpu_b0, pre_ns, gen0 = cpu_seconds([pid_b]), time.perf_counter_ns(), sum(os.times()[:2])
        ready = [c for c in ready if c.link is not None and c.port == node_a]
        storm.killed_ns = time.perf_counter_ns()
        os.kill(pid_a, signal.SIGKILL)
        print(f"[storm] kill -9 node A (pid {pid_a}), {len(ready)} clients on it", flush=True)
        if result["setup_close_codes"] or result["setup_handshake_failures"]:
            print(
                f"[storm] while setting up: close codes {result['setup_close_codes']}, handshake failures "
                f"{result['setup_handshake_failures']}",
                flush=True,
            )
        all_back = await wait_until(lambda: all(c.back_at for c in ready), STORM_LIMIT)
        back_ns = time.perf_counter_ns()
        cpu_b = cpu_seconds([pid_b]) - cpu_b0
        gen_cpu = sum(os.times()[:2]) - gen0
        await asyncio.sleep(AFTER)
        stop_publishing.set()
        sent = await publishing
        publishing = None

        # 4. Drain: every subscriber holds its room's last acked seq, or the limit passed.
        # Publishes still in flight are acked first: an ack that came after the drain
        # began would otherwise count its message as never received.
        await wait_until(lambda: not storm.pending, 10)
        last_acked: dict[str, int] = {}
        for room, seq, _, _ in storm.acks:
            last_acked[room] = max(seq, last_acked.get(room, 0))

        def complete() -> bool:
            for c in everyone:
                if not c.settled():
                    continue
                for view in c.rooms.values():
                    if last_acked.get(view.name) and not view.holds(last_acked[view.name]):
                        return False
                    if view.buffer:
                        return False
            return True

        drained = await wait_until(complete, DRAIN_LIMIT)

        # 5. Figures.
        acked: dict[str, list[int]] = {}
        for room, seq, _, _ in storm.acks:
            acked.setdefault(room, []).append(seq)
        # A loss is an acked seq that a settled subscriber (connected, subscribed, caught up
        # with its `subscribed` seq) still lacks. What a client still out of the room lacks
        # is owed, not lost: it asks for it with `since` once it is back.
        missing: set[tuple[str, int]] = set()
        misses = owed = 0
        out = Counter(c.state() for c in everyone if not c.settled())
        for c in everyone:
            settled = c.settled()
            for view in c.rooms.values():
                first = view.first
                for seq in acked.get(view.name, []) if first is not None else []:
                    if seq > first and not view.holds(seq):
                        if settled:
                            missing.add((view.name, seq))
                            misses += 1
                        else:
                            owed += 1
        back = sorted((c.back_at - storm.killed_ns) / 1e9 for c in ready if c.back_at)
        attempts = [c.attempts - attempts_before[id(c)] for c in ready]
        before = ack_figures(storm.acks, storm.killed_ns - int(PRE * 1e9), storm.killed_ns)
        during = ack_figures(storm.acks, storm.killed_ns, max(back_ns, storm.killed_ns + int(1e9)))
        result.update(
            {
                "moved": len(ready),
                "back": len(back),
                "all_back": all_back,
                "back_p50_s": quantile(back, 0.50),
                "back_p99_s": quantile(back, 0.99),
                "back_100_s": back[-1] if all_back and back else math.nan,
                "published": sent,
                "acked": len(storm.acks),
                "unacked": len(storm.pending),
                "publish_errors": dict(storm.publish_errors),
                "publish_retries": storm.retries,
                "lost": len(missing),
                "lost_deliveries": misses,
                "not_settled_at_end": dict(out),
                "owed_to_clients_not_back": owed,
                "drained": drained,
                "repeats_dropped": storm.repeats,
                "gap_repairs": storm.repairs,
                "not_recovered": storm.not_recovered,
                "resets": storm.resets,
                "connect_attempts": sum(attempts),
                "connect_attempts_max": max(attempts, default=0),
                "handshake_failures": dict(storm.handshake_failures),
                "close_codes": dict(sorted(storm.close_codes.items())),
                "fatal_closes": storm.fatal,
                "errors": dict(storm.errors),
                "before": before,
                "during": during,
                "node_b_cpu_share_during": cpu_b / max(1e-9, (back_ns - pre_ns) / 1e9) / CORES,
                "gen_cpu_share_during": gen_cpu / max(1e-9, (back_ns - pre_ns) / 1e9) / CORES,
            }
        )
        print(
            f"[storm] back and caught up: {len(back)}/{len(ready)}; from the kill p50 {result['back_p50_s']:.2f} s, "
            f"p99 {result['back_p99_s']:.2f} s, 100% {result['back_100_s']:.2f} s; connect attempts "
            f"{sum(attempts)} (max {result['connect_attempts_max']} per client), handshake failures "
            f"{dict(storm.handshake_failures) or 0}, close codes {result['close_codes']}",
            flush=True,
        )
        print(
            f"[storm] acked {len(storm.acks)}/{sent} ({len(storm.pending)} unanswered, errors "
            f"{dict(storm.publish_errors) or 0}, sent again with their key {storm.retries}); "
            f"acked but never received by a settled subscriber: {len(missing)} ({misses} deliveries); "
            f"not settled at the end {dict(out) or 0} (owed {owed}); repeats dropped {storm.repeats}, "
            f"gap repairs {storm.repairs}, "
            f"recovered:false {storm.not_recovered}",
            flush=True,
        )
        print(
            f"[storm] node B acks: before {before['ack_rate']:.0f}/s p99 {before['ack_p99_ms']:.1f} ms; "
            f"during {during['ack_rate']:.0f}/s p99 {during['ack_p99_ms']:.1f} ms "
            f"({during['seconds']:.1f} s; CPU share of all {CORES} cores: node B "
            f"{100 * result['node_b_cpu_share_during']:.0f}%, generator {100 * result['gen_cpu_share_during']:.0f}%)",
            flush=True,
        )
    finally:
        stop_publishing.set()
        if publishing is not None:
            publishing.cancel()
        for c in everyone:
            c.close()
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
