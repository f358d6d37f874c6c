"""Throughput, latency, CPU and memory of the chat cluster, beside two reference systems, in one run.

Systems, each on 2 processes with a private Redis, started and stopped here:
  ours      `manage.py runcluster` (2 nodes) with every feature on; the rate limiter is
            raised (CHAT_PUBLISH_RATE/BURST=100000), not switched off.
  tutorial  the Channels tutorial design (bench/tutorial/) on 2 daphne processes.
  bare      picows + uvloop + Redis pub/sub (bench/bare_server.py): the asyncio floor.

One load generator process (picows on uvloop) speaks the protocol to each in turn:
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
The references read the room from the URL path (`/ws/<room>/`) and answer a publish's
`ref` with an ack, so the generator does the same work for every system.

Output: a table on stdout, bench/results/perf.json and docs/bench.png (p99 against offered
rate). Run: `make bench`, or `python bench/perf.py [--quick] [--conns N] [--rooms R]
[--seconds S]`. Loopback only; every loop is bounded and the whole run has a deadline.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench.perfkit.measure import CORES  # noqa: E402
from bench.perfkit.rates import measure_rates  # noqa: E402
from bench.perfkit.report import finite, plot, table  # noqa: E402
from bench.perfkit.systems import (  # noqa: E402
    OPTIONAL_SYSTEMS,
    SYSTEMS,
    Target,
    start_ours,
    start_reference,
    start_uvicorn,
    stop_children,
)

WEIGHTS = {"ours": 2.0, "tutorial": 1.0, "bare": 1.0, "uvicorn": 2.0}
PROFILES = {
    "default": {"conns": 500, "rooms": 10, "seconds": 5.0, "big": 2000, "budget": 560.0, "start_rate": 2500.0},
    "quick": {"conns": 100, "rooms": 4, "seconds": 2.0, "big": 300, "budget": 120.0, "start_rate": 2500.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small N and short steps (about 2 minutes)")
    parser.add_argument("--conns", type=int, help="sockets for the rate steps (default 500, quick 100)")
    parser.add_argument("--rooms", type=int, help="rooms for the rate steps (default 10, quick 4)")
    parser.add_argument("--seconds", type=float, help="publishing time per step (default 5, quick 2)")
    parser.add_argument("--big", type=int, help="members of the big room (default 2000, quick 300)")
    parser.add_argument("--budget", type=float, help="deadline for the whole run in seconds (default 560)")
    parser.add_argument("--start-rate", type=float, help="first offered deliveries/s (default 2500)")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="ours, tutorial, bare, uvicorn (default: the first 3)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "perf.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "bench.png")
    args = parser.parse_args()
    for key, value in PROFILES["quick" if args.quick else "default"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    systems = [s for s in (*SYSTEMS, *OPTIONAL_SYSTEMS) if s in args.systems.split(",")]

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
        f"perf: {args.conns} sockets in {args.rooms} rooms, {args.seconds:g} s steps, big room {args.big}, "
        f"systems {', '.join(systems)}, deadline {args.budget:.0f} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        for index, name in enumerate(systems):
            print(f"[{name}] starting", flush=True)
            target: Target | None = None
            try:
                if name == "ours":
                    target = start_ours(Path(tmp) / name, max(args.conns, args.big))
                elif name == "uvicorn":
                    target = start_uvicorn(Path(tmp) / name, max(args.conns, args.big))
                else:
                    target = start_reference(name, Path(tmp) / name)
                # A share of the time left, by weight: ours needs the most (its slow big-room
                # joins); what a system leaves unused goes to those after it.
                weight = WEIGHTS[name] / sum(WEIGHTS[s] for s in systems[index:])
                results[name] = {}
                system_deadline = time.monotonic() + weight * (deadline - time.monotonic())
                uvloop.run(measure_rates(target, args, system_deadline, results[name]))
            except Exception as exc:
                traceback.print_exc()
                results.setdefault(name, {})["failed"] = f"{type(exc).__name__}: {exc}"
                print(f"[{name}] failed: {exc}", flush=True)
            finally:
                if target is not None:
                    target.stop()
                stop_children()
    elapsed = time.monotonic() - started
    print()
    print(table(results))
    print(f"\nrun time {elapsed:.0f} s; ratios are ours divided by the reference (higher is better only for rates)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("out", "plot")}
    report = {"config": config, "cores": CORES, "run_seconds": elapsed, "systems": results}
    args.out.write_text(json.dumps(finite(report), indent=2, default=str))
    title = f"p99 latency, {args.conns} sockets in {args.rooms} rooms, 2 processes each"
    plot(results, args.plot, title)
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: everything this run started is stopped", flush=True)
        sys.exit(130)
