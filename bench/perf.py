"""Throughput, latency, CPU and memory of the chat cluster, beside two reference systems, in one run.

Systems, each on 2 processes with a private Redis, started and stopped here:
  ours      `manage.py runcluster` (2 nodes) with every feature on; the rate limiter is
            raised (CHAT_PUBLISH_RATE/BURST=100000), not switched off.
  tutorial  the Channels tutorial design (bench/tutorial/) on 2 daphne processes.
  bare      picows + uvloop + Redis pub/sub (bench/bare_server.py): the asyncio floor.

One load generator process (picows on uvloop) speaks the protocol to each in turn, in
four parts (`--only rates,upkeep,connect,storm`, default all; the code is in bench/perfkit/):

rates (bench/perfkit/rates.py), on each system:
  1. opens CONNS sockets, spread over both processes, ROOMS rooms (connect rate, and node
     RSS before/after: idle memory per socket);
  2. publishes at an offered rate of deliveries/s (messages/s x room members), spread
     over 5 publisher sockets per room, for SECONDS; every body carries its send time.
     The rate doubles, then bisects, until p99 > 250 ms, loss > 1 % or deliveries fall
     behind the offered rate; the best passing step is the sustained rate. Loss counts
     every published message x its room's members, after a drain wait;
  3. node CPU per delivery, from the step at (or nearest below) 10,000 deliveries/s;
  4. publish-to-ack p99 at half the sustained rate;
  5. one room of BIG members at 20 messages/s.
upkeep and connect (bench/perfkit/idle.py), on each system, freshly started: a WINDOW with
  no socket, then IDLE_SOCKETS sockets from zero in IDLE_ROOMS rooms with INFLIGHT
  handshakes at a time (sockets/s, time to subscribed, failures), then the same WINDOW
  with all of them idle: node CPU per socket-second and Redis commands/s per 1,000
  sockets, raw and net of the empty window.
storm (bench/perfkit/storm.py), ours only: 2 nodes without supervisord, STORM_CLIENTS
  clients on node A, publishers on node B, `kill -9` node A; time until its clients are
  back on node B and caught up, messages acked but never received (must be 0), attempts,
  close codes, node B's ack rate and ack p99 before and during.
The references read the room from the URL path (`/ws/<room>/`) and answer a publish's
`ref` with an ack, so the generator does the same work for every system.

Output: tables on stdout, bench/results/perf.json and docs/bench.png (p99 against offered
rate; only when the rates ran). Run: `make bench`, or `python bench/perf.py [--quick]
[--only PARTS] [--systems S] [--conns N] [--rooms R] [--seconds S] [--idle-sockets N]
[--window S] [--storm-clients N] ...` (`--help` lists them). Loopback only; every loop is
bounded and the whole run has a deadline (--budget; `make bench` adds a timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench.perfkit.idle import measure_idle  # noqa: E402
from bench.perfkit.measure import CORES  # noqa: E402
from bench.perfkit.rates import measure_rates  # noqa: E402
from bench.perfkit.report import details, finite, plot, table  # noqa: E402
from bench.perfkit.storm import measure_storm  # noqa: E402
from bench.perfkit.systems import (  # noqa: E402
    OPTIONAL_SYSTEMS,
    SYSTEMS,
    Target,
    start_nodes,
    start_ours,
    start_reference,
    start_uvicorn,
    stop_children,
)

WEIGHTS = {"ours": 2.0, "tutorial": 1.0, "bare": 1.0, "uvicorn": 2.0}
PARTS = ("rates", "upkeep", "connect", "storm")
PROFILES = {
    "default": {
        "conns": 500,
        "rooms": 10,
        "seconds": 5.0,
        "big": 2000,
        "rates_budget": 560.0,
        "start_rate": 2500.0,
        "idle_sockets": 2000,
        "idle_rooms": 100,
        "window": 20.0,
        "inflight": 200,
        "storm_clients": 1000,
        "storm_rooms": 20,
        "storm_rate": 200.0,
    },
    "quick": {
        "conns": 100,
        "rooms": 4,
        "seconds": 2.0,
        "big": 300,
        "rates_budget": 120.0,
        "start_rate": 2500.0,
        "idle_sockets": 500,
        "idle_rooms": 25,
        "window": 15.0,
        "inflight": 100,
        "storm_clients": 300,
        "storm_rooms": 10,
        "storm_rate": 100.0,
    },
}


def reserves(args: argparse.Namespace, parts: set[str], systems: list[str]) -> tuple[float, float]:
    """Seconds to keep for the idle part of one system and for the storm (typical, with margin)."""
    idle = 40 + 2 * args.window + args.idle_sockets / 50 if parts & {"upkeep", "connect"} else 0.0
    storm = 120 + args.storm_clients / 10 if "storm" in parts and "ours" in systems else 0.0
    return idle, storm


def start(name: str, tmp: Path, users: int) -> Target:
    if name == "ours":
        return start_ours(tmp, users)
    if name == "uvicorn":
        return start_uvicorn(tmp, users)
    return start_reference(name, tmp)


def run_part(name: str, part: str, results: dict[str, Any], go: Callable[[], None]) -> None:
    """One part on one system: failures are written down and the run goes on; children stopped."""
    try:
        go()
    except Exception as exc:
        traceback.print_exc()
        results.setdefault(name, {})[f"{part}_failed" if part != "rates" else "failed"] = f"{type(exc).__name__}: {exc}"
        print(f"[{name}] {part} failed: {exc}", flush=True)
    finally:
        stop_children()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small N and short steps (about 2 minutes per part)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"parts to run, comma-separated: {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument("--conns", type=int, help="sockets for the rate steps (default 500, quick 100)")
    parser.add_argument("--rooms", type=int, help="rooms for the rate steps (default 10, quick 4)")
    parser.add_argument("--seconds", type=float, help="publishing time per step (default 5, quick 2)")
    parser.add_argument("--big", type=int, help="members of the big room (default 2000, quick 300)")
    parser.add_argument(
        "--budget",
        type=float,
        help="deadline for the whole run in seconds (default: 560 for the rates, quick 120, + the other parts' share)",
    )
    parser.add_argument("--start-rate", type=float, help="first offered deliveries/s (default 2500)")
    parser.add_argument("--idle-sockets", type=int, help="sockets for upkeep and connect (default 2000, quick 500)")
    parser.add_argument("--idle-rooms", type=int, help="rooms the idle sockets spread over (default 100, quick 25)")
    parser.add_argument("--window", type=float, help="seconds of each upkeep window (default 20, quick 15)")
    parser.add_argument("--inflight", type=int, help="handshakes in flight while connecting (default 200, quick 100)")
    parser.add_argument("--storm-clients", type=int, help="clients on the killed node (default 1000, quick 300)")
    parser.add_argument("--storm-rooms", type=int, help="rooms of the storm, one publisher each (default 20, quick 10)")
    parser.add_argument("--storm-rate", type=float, help="messages/s published in the storm (default 200, quick 100)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="ours, tutorial, bare, uvicorn, floor (default: the first 3)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "perf.json")
    parser.add_argument(
        "--keep-logs", action="store_true", help="copy the systems' logs to bench/results/logs/ at the end"
    )
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "bench.png")
    args = parser.parse_args()
    for key, value in PROFILES["quick" if args.quick else "default"].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    systems = [s for s in (*SYSTEMS, *OPTIONAL_SYSTEMS) if s in args.systems.split(",")]
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"--only: unknown parts {', '.join(sorted(parts - set(PARTS)))}; choose from {', '.join(PARTS)}")
    idle_reserve, storm_reserve = reserves(args, parts, systems)
    later = idle_reserve * len(systems) + storm_reserve
    if args.budget is None:
        args.budget = (args.rates_budget if "rates" in parts else 0) + later

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Both stop the run through the same `finally` blocks; SIGINT is set here too because a
    # shell that starts us in the background leaves it ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    started = time.monotonic()
    deadline = started + args.budget
    results: dict[str, dict[str, Any]] = {}
    print(
        f"perf: parts {', '.join(p for p in PARTS if p in parts)}; {args.conns} sockets in {args.rooms} rooms, "
        f"{args.seconds:g} s steps, big room {args.big}; idle {args.idle_sockets} sockets in {args.idle_rooms} rooms, "
        f"{args.window:g} s windows, {args.inflight} in flight; storm {args.storm_clients} clients, "
        f"{args.storm_rate:g} msg/s in {args.storm_rooms} rooms; systems {', '.join(systems)}, "
        f"deadline {args.budget:.0f} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        if "rates" in parts:
            # The rate steps fill the time the other parts leave.
            rates_deadline = deadline - later
            for index, name in enumerate(systems):

                def rates(name: str = name, index: int = index) -> None:
                    print(f"[{name}] starting", flush=True)
                    target = start(name, Path(tmp) / name, max(args.conns, args.big))
                    try:
                        # A share of the time left, by weight: ours needs the most (its slow
                        # big-room joins); what a system leaves unused goes to those after it.
                        weight = WEIGHTS[name] / sum(WEIGHTS[s] for s in systems[index:])
                        results[name] = {}
                        system_deadline = time.monotonic() + weight * (rates_deadline - time.monotonic())
                        uvloop.run(measure_rates(target, args, system_deadline, results[name]))
                    finally:
                        target.stop()

                run_part(name, "rates", results, rates)
        if parts & {"upkeep", "connect"}:
            for name in systems:

                def idle(name: str = name) -> None:
                    if time.monotonic() > deadline:
                        raise TimeoutError("out of time before the idle part")
                    print(f"[{name}] starting for upkeep and connect", flush=True)
                    target = start(name, Path(tmp) / f"{name}-idle", args.idle_sockets)
                    try:
                        uvloop.run(measure_idle(target, args, parts, results.setdefault(name, {})))
                    finally:
                        target.stop()

                run_part(name, "idle", results, idle)
        if "storm" in parts and "ours" in systems:

            def storm() -> None:
                if time.monotonic() > deadline:
                    raise TimeoutError("out of time before the storm")
                print("[storm] starting 2 nodes (runnode, nothing restarts them)", flush=True)
                target = start_nodes(Path(tmp) / "storm", args.storm_clients + args.storm_rooms)
                try:
                    uvloop.run(measure_storm(target, args, results.setdefault("ours", {}).setdefault("storm", {})))
                finally:
                    target.stop()

            run_part("ours", "storm", results, storm)
            for name in systems:
                if name != "ours":
                    results.setdefault(name, {})["storm"] = {"n/a": "no seq and no `since`: nothing to recover with"}
        if args.keep_logs:
            keep_logs(Path(tmp), args.out.parent / "logs")
    elapsed = time.monotonic() - started
    print()
    print(table(results, parts))
    print(f"\nrun time {elapsed:.0f} s; ratios are ours divided by the reference (higher is better only for rates)")
    for line in details(results, parts):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("out", "plot")}
    config["only"] = sorted(parts)
    report = {"config": config, "cores": CORES, "run_seconds": elapsed, "load": load(), "systems": results}
    args.out.write_text(json.dumps(finite(report), indent=2, default=str))
    if "rates" in parts:
        title = f"p99 latency, {args.conns} sockets in {args.rooms} rooms, 2 processes each"
        plot(results, args.plot, title)
        print(f"wrote {args.out} and {args.plot}")
    else:
        print(f"wrote {args.out}")


def keep_logs(tmp: Path, dest: Path) -> None:
    """Every *.log of the run's processes, under dest/<part or system>/, replacing an older copy."""
    shutil.rmtree(dest, ignore_errors=True)
    for log in tmp.rglob("*.log"):
        target = dest / log.relative_to(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    print(f"logs in {dest}", flush=True)


def load() -> list[float]:
    """The machine's load average (1, 5, 15 min) at the end of the run: others may share it."""
    return list(os.getloadavg())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: everything this run started is stopped", flush=True)
        sys.exit(130)
