"""A chaos soak: a 3-node cluster under steady traffic, with random faults at random times.

`make soak` (SOAK_MINUTES, default 10) runs it from the command line; a 60-second run is
part of `make test` (tests/test_soak.py). About 200 followers in 20 rooms and one
publisher per room keep traffic flowing, all from this process, to the nodes' ports as a
balancer would send them. Every few seconds one fault from FAULTS is applied, then the
soak waits until the cluster has recovered: every node's /readyz answers 200 again and
every follower holds every message acked before the fault ended. An invariant checker
runs throughout (each follower's messages are seqs 1..n with no gap and no repeat; no
seq is acked for two publishes) and again at the end, when presence must equal the
followers of each room and every acked message must be at every follower of its room.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos import (
    CHAOS_ENV,
    PRESENCE_SETTLE,
    Follower,
    Publisher,
    presence_converges,
    stalled_socket,
    wait_for,
)

# The chaos tests' timings; a stalled client is a user of its own, below the socket cap.
SOAK_ENV = {**CHAOS_ENV, "CHAT_MAX_SOCKETS_PER_USER": "5"}
# The longest a recovery may take before the soak calls a node stuck.
RECOVERY_LIMIT = 60.0
FAULTS = ("kill_node", "drain_node", "restart_redis", "pause_redis", "stalled_client")
STALLED_MAX = 20


@dataclass
class Summary:
    seed: int
    faults: Counter[str] = field(default_factory=Counter)
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    acked: int = 0
    lost: int = 0
    repeats_before_dedupe: int = 0
    duplicates_after_dedupe: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def longest_recovery(self) -> tuple[str, float]:
        return max(self.recoveries, key=lambda r: r[1], default=("none", 0.0))

    def table(self) -> str:
        kind, longest = self.longest_recovery
        rows = [
            ("seed", str(self.seed)),
            ("faults applied", str(sum(self.faults.values()))),
            *((f"  {name}", str(count)) for name, count in sorted(self.faults.items())),
            ("messages acked", str(self.acked)),
            ("lost (must be 0)", str(self.lost)),
            ("repeats received, dropped by seq", str(self.repeats_before_dedupe)),
            ("duplicates after dedupe (must be 0)", str(self.duplicates_after_dedupe)),
            ("longest recovery (s)", f"{longest:.1f} ({kind})"),
            ("invariant violations (must be 0)", str(len(self.violations))),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicates_after_dedupe == 0 and not self.violations


async def run_soak(
    tmp: Path, *, seconds: float, rooms: int = 20, per_room: int = 10, seed: int | None = None
) -> Summary:
    from tests.cluster import http_status, start_cluster

    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    summary = Summary(seed)
    cluster = start_cluster(tmp, nodes=3, env=SOAK_ENV, private_redis=True)
    try:
        ports = [cluster.node_port(i) for i in range(3)]
        names = [f"soak-r{r}-f{f}" for r in range(rooms) for f in range(per_room)]
        # A stalled client is a user of its own: its socket may stay open until its queue fills.
        names += [f"soak-r{r}-p" for r in range(rooms)] + ["soak-watch"] + [f"soak-slow{i}" for i in range(STALLED_MAX)]
        tokens = dict(zip(names, cluster.tokens(*names), strict=True))
        room_names = [f"soak-{seed}-{r}" for r in range(rooms)]
        followers = {
            room: [
                Follower(f"soak-r{r}-f{f}", tokens[f"soak-r{r}-f{f}"], rotate(ports, r + f), room)
                for f in range(per_room)
            ]
            for r, room in enumerate(room_names)
        }
        publishers = {
            room: Publisher(f"soak-r{r}-p", tokens[f"soak-r{r}-p"], rotate(ports, r), room, interval=0.4)
            for r, room in enumerate(room_names)
        }
        stop_following, stop_publishing = asyncio.Event(), asyncio.Event()
        everyone = [f for group in followers.values() for f in group]
        following = [asyncio.create_task(f.run(stop_following)) for f in everyone]
        await wait_for(lambda: all(f.ready.is_set() for f in everyone), 60, "every follower subscribed")
        publishing = [asyncio.create_task(p.run(stop_publishing)) for p in publishers.values()]
        checker = asyncio.create_task(check_continuously(followers, publishers, summary))

        def ready() -> bool:
            return all(http_status(f"http://127.0.0.1:{p}/readyz") == 200 for p in ports)

        def caught_up(targets: dict[str, int]) -> bool:
            return all(f.complete_upto(targets[room]) for room, group in followers.items() for f in group)

        stalled = []
        stalled_users: dict[str, set[str]] = {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline - 5:
            await asyncio.sleep(rng.uniform(2, 6))  # faults come at random times
            kind = rng.choice(FAULTS)
            summary.faults[kind] += 1
            node = rng.randrange(3)
            print(f"soak: {time.monotonic() - deadline + seconds:6.1f} s: {kind}", flush=True)
            if kind == "kill_node":
                cluster.kill_node(node)
            elif kind == "drain_node":
                cluster.kill_node(node, signal.SIGTERM)
            elif kind == "restart_redis":
                redis_pid = cluster.cluster.pid(cluster.cluster.redis_program(0))
                os.kill(redis_pid, signal.SIGKILL)
            elif kind == "pause_redis":
                redis_pid = cluster.cluster.pid(cluster.cluster.redis_program(0))
                os.kill(redis_pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(rng.uniform(2, 5))  # the fault itself: Redis frozen
                finally:
                    os.kill(redis_pid, signal.SIGCONT)
            elif len(stalled) < STALLED_MAX:
                token = tokens[f"soak-slow{len(stalled)}"]
                stalled_room = rng.choice(room_names)
                stalled.append(await stalled_socket(ports[node], token, stalled_room))
                # Its user is truly in the room until the node closes the socket (when its
                # queue fills, which a quiet room may take longer than the soak to do).
                stalled_users.setdefault(stalled_room, set()).add(f"soak-slow{len(stalled) - 1}")
            ended = time.monotonic()
            targets = {room: max(p.acked.values(), default=0) for room, p in publishers.items()}
            try:
                await wait_for(
                    lambda targets=targets: ready() and caught_up(targets), RECOVERY_LIMIT, f"recovery from {kind}"
                )
            except AssertionError as exc:
                summary.violations.append(f"stuck: {exc}")
                break
            summary.recoveries.append((kind, time.monotonic() - ended))
            if kind != "stalled_client":
                room = rng.choice(room_names)
                expected = {f.name for f in followers[room]}
                maybe = stalled_users.get(room, set())
                await presence_settles(ports[node], tokens["soak-watch"], room, expected, summary, maybe)
        stop_publishing.set()
        await asyncio.gather(*publishing)
        # Stalled clients drop off (no close frame): their users leave after the grace.
        for ws in stalled:
            ws.transport.abort()
        # Presence equal to the truth: every follower of each room, no one else.
        for room, group in followers.items():
            expected = {f.name for f in group}
            await presence_settles(ports[0], tokens["soak-watch"], room, expected, summary)
        finals = {room: max(p.acked.values(), default=0) for room, p in publishers.items()}
        try:
            await wait_for(lambda: caught_up(finals), 30, "every follower holding every acked message")
        except AssertionError as exc:
            summary.violations.append(str(exc))
        stop_following.set()
        checker.cancel()
        await asyncio.gather(*following, return_exceptions=True)
        check_once(followers, publishers, summary, final=True)
    finally:
        cluster.stop()
    return summary


def rotate(ports: list[int], by: int) -> list[int]:
    by %= len(ports)
    return ports[by:] + ports[:by]


async def presence_settles(
    port: int, token: str, room: str, expected: set[str], summary: Summary, maybe: set[str] = frozenset()
) -> None:
    """Presence equal to the truth within PRESENCE_SETTLE, or a violation noted."""
    try:
        await presence_converges(port, token, "soak-watch", room, expected, PRESENCE_SETTLE, maybe)
    except AssertionError as exc:
        summary.violations.append(str(exc))


async def check_continuously(followers: dict[str, Any], publishers: dict[str, Any], summary: Summary) -> None:
    while True:
        await asyncio.sleep(1)
        check_once(followers, publishers, summary, final=False)


def check_once(followers: dict[str, Any], publishers: dict[str, Any], summary: Summary, *, final: bool) -> None:
    """The invariants; at the end also loss, counted over every follower of every room."""
    for room, publisher in publishers.items():
        seqs = list(publisher.acked.values())
        if len(set(seqs)) != len(seqs):
            note(summary, f"{room}: a seq acked for two publishes")
        for follower in followers[room]:
            delivered = follower.delivered
            start = delivered[0] if delivered else 1
            if delivered != list(range(start, start + len(delivered))):
                note(summary, f"{follower.name}: delivered out of order or with a gap")
            if start != 1:
                note(summary, f"{follower.name}: the room's first messages never delivered")
    if final:
        summary.acked = sum(len(p.acked) for p in publishers.values())
        for room, publisher in publishers.items():
            for follower in followers[room]:
                held = set(follower.delivered)
                summary.lost += sum(1 for seq in publisher.acked.values() if seq not in held)
                summary.duplicates_after_dedupe += len(follower.delivered) - len(held)
                summary.repeats_before_dedupe += len(follower.raw) - len(set(follower.raw))


def note(summary: Summary, violation: str) -> None:
    if violation not in summary.violations:
        summary.violations.append(violation)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        started = time.monotonic()
        summary = asyncio.run(run_soak(Path(tmp), seconds=args.minutes * 60, seed=args.seed))
    print(f"soak: {args.minutes:g} min, ran {time.monotonic() - started:.0f} s; load {os.getloadavg()}")
    print(summary.table())
    for violation in summary.violations:
        print(f"violation: {violation}")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
