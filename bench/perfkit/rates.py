"""The rate phases: connect, rate steps to the sustained rate, CPU step, ack step, big room."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from bench.perfkit.loadgen import Generator
from bench.perfkit.measure import rss_kb
from bench.perfkit.systems import Target

CPU_STEP_RATE = 10_000.0
BIG_MSGS_S = 20.0
MAX_STEPS = 10
MAX_REFINE = 2


async def measure_rates(target: Target, args: argparse.Namespace, deadline: float, result: dict[str, Any]) -> None:
    """Fill `result` as the phases finish, so a failure keeps what was measured before it."""
    gen = Generator(target)
    result["steps"] = []
    result["errors"] = gen.errors
    run = f"{int(time.time()) % 100000}"
    rooms = [f"perf-{run}-{r}" for r in range(args.rooms)]
    # A passing step drains at once; a failing one waits up to max(3, seconds).
    step_cost = 2 * args.seconds + 2
    # Time kept back for the ack step and the big room after the rate steps.
    reserve = 2 * step_cost + args.big / 40 + 5

    await asyncio.sleep(1)
    rss_before = rss_kb(target.pids)
    conns, took = await gen.connect(args.conns, lambda i: rooms[i % len(rooms)])
    result["connect_per_s"] = len(conns) / took
    result["connected"] = len(conns)
    await gen.settle()
    await asyncio.sleep(1)
    rss_after = rss_kb(target.pids)
    result["rss_kb_before"], result["rss_kb_after"] = rss_before, rss_after
    result["idle_kb_per_conn"] = (rss_after - rss_before) / max(1, len(conns))
    print(
        f"[{target.name}] {len(conns)}/{args.conns} sockets in {len(rooms)} rooms in {took:.1f} s "
        f"({result['connect_per_s']:.0f}/s); node RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB "
        f"({result['idle_kb_per_conn']:.1f} KB per socket)",
        flush=True,
    )
    if not conns:
        raise RuntimeError("no socket could connect")

    rate, good, bad, refined = args.start_rate, 0.0, 0.0, 0
    for _ in range(MAX_STEPS):
        if time.monotonic() + step_cost > deadline - reserve:
            print(f"[{target.name}] out of time for more rate steps", flush=True)
            result["stepping_cut_short"] = True
            break
        row = await gen.step(conns, rate, args.seconds)
        result["steps"].append(row)
        if row["generator_short"]:
            result["generator_limited"] = True
        if row["verdict"] == "generator":
            break  # the system kept up with all the generator could send: no limit found
        if row["verdict"] == "ok":
            good = rate
        else:
            bad = rate
        if not bad:
            rate *= 2
        elif not good:
            rate /= 2
            if rate < 100:
                break
        elif bad / good > 1.2 and refined < MAX_REFINE:
            rate, refined = round((good + bad) / 2), refined + 1
        else:
            break
    passing = [r for r in result["steps"] if r["verdict"] == "ok"]
    result["sustained"] = max(passing, key=lambda r: r["deliveries_s"]) if passing else None
    below = [r for r in passing if r["offered"] <= CPU_STEP_RATE * 1.01]
    fallback = passing or result["steps"]
    result["cpu_step"] = max(below, key=lambda r: r["offered"]) if below else (fallback[0] if fallback else None)

    # The ack step and the big room run even past the deadline: both are short and bounded,
    # and without them the run would lack two of its figures.
    if result["sustained"]:
        half = result["sustained"]["deliveries_s"] / 2
        result["ack_step"] = await gen.step(conns, half, args.seconds, "ack step")

    await gen.close(conns)
    big_room = f"big-{run}"
    big, took = await gen.connect(args.big, lambda i: big_room)
    print(
        f"[{target.name}] {len(big)}/{args.big} sockets in one room in {took:.1f} s "
        f"({len(big) / took:.0f}/s, generator CPU {100 * gen.connect_cpu_share:.0f}%)",
        flush=True,
    )
    result["big_connect_per_s"] = len(big) / took
    result["big_connect_gen_cpu_share"] = gen.connect_cpu_share
    await gen.settle()
    if big:
        result["big_room"] = await gen.step(big, BIG_MSGS_S * len(big), args.seconds, "big room")
        result["big_room"]["members"] = len(big)
    await gen.close(big)
    result["gen_cpu_share_max"] = max((r["gen_cpu_share"] for r in result["steps"]), default=math.nan)
