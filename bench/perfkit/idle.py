"""Idle sockets: the connect rate from zero, and the upkeep of sockets that do nothing.

On a freshly started system, in this order:
  1. baseline (upkeep): a window of WINDOW seconds with no socket open: node CPU (utime +
     stime of the node processes, /proc/<pid>/stat), Redis CPU, and the commands the
     system's private Redis ran (INFO commandstats);
  2. connect: IDLE_SOCKETS sockets from zero, spread over IDLE_ROOMS rooms, at most
     INFLIGHT handshakes at a time; a socket counts once subscribed (ours: open, send
     `subscribe`, get `subscribed`; the references: open on /ws/<room>/). Sockets/s,
     p50/p99 time from the start of a socket's handshake to subscribed, and failures by
     kind (handshake errors, close codes, subscribes refused or unanswered);
  3. upkeep: the same window with every socket open, subscribed and silent. Per idle
     socket and second: node CPU (us) and Redis commands (per 1,000 sockets), raw and net
     of the baseline (the baseline's rate subtracted). The window is a multiple of the
     cluster's presence heartbeat (PRESENCE_TTL / 3 = 5 s by default) and holds several:
     the heartbeats come in bursts, so a window may catch one burst per node more or
     less than its share (up to 1/4 at 20 s); the JSON keeps the window sampled every
     0.5 s to show them.
Nothing is imported from the systems: only sockets, /proc and Redis INFO.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
from collections import Counter
from typing import Any

from bench.perfkit.loadgen import Generator
from bench.perfkit.measure import CORES, RedisCalls, cpu_seconds, percentile, rss_kb
from bench.perfkit.systems import Target

# Seconds a freshly started system is left alone before its baseline window.
START_QUIET = 3.0
# Seconds between the samples kept of a window.
SAMPLE = 0.5


async def window(target: Target, seconds: float, calls: RedisCalls, label: str) -> dict[str, Any]:
    """CPU and Redis commands of `target` over `seconds` of doing nothing on our side."""
    node0, redis0 = cpu_seconds(target.pids), cpu_seconds(target.redis_pids)
    gen0, commands0 = sum(os.times()[:2]), calls.snapshot()
    started = time.perf_counter()
    # Sampled as it goes, so the JSON shows when the heartbeats' bursts came.
    series: list[tuple[float, int, float]] = []
    while (elapsed := time.perf_counter() - started) < seconds:
        await asyncio.sleep(min(SAMPLE, seconds - elapsed))
        count = RedisCalls.delta(commands0, calls.snapshot()).total()
        series.append((round(time.perf_counter() - started, 2), count, round(cpu_seconds(target.pids) - node0, 2)))
    wall = time.perf_counter() - started
    commands = RedisCalls.delta(commands0, calls.snapshot())
    out = {
        "seconds": wall,
        "node_cpu_s": cpu_seconds(target.pids) - node0,
        "redis_cpu_s": cpu_seconds(target.redis_pids) - redis0,
        "gen_cpu_share": (sum(os.times()[:2]) - gen0) / wall / CORES,
        "redis_commands": commands.total(),
        "redis_by_command": dict(commands.most_common()),
        # (seconds, Redis commands, node CPU seconds) since the window began
        "series": series,
    }
    out["node_cpu_share"] = out["node_cpu_s"] / wall
    out["redis_commands_s"] = out["redis_commands"] / wall
    top = ", ".join(f"{name} {n / wall:,.1f}/s" for name, n in commands.most_common(4))
    print(
        f"[{target.name}] {label}: {wall:.1f} s, node CPU {100 * out['node_cpu_share']:.1f}% of a core, "
        f"Redis {out['redis_commands_s']:,.1f} commands/s ({top or 'none'}), "
        f"Redis CPU {100 * out['redis_cpu_s'] / wall:.1f}%",
        flush=True,
    )
    return out


def upkeep_figures(base: dict[str, Any], idle: dict[str, Any], sockets: int) -> dict[str, float]:
    """Per idle socket and second, raw and net of the 0-socket baseline's rate."""
    if not sockets:
        return {}
    per = sockets * idle["seconds"]
    node_base = base["node_cpu_s"] / base["seconds"] * idle["seconds"]
    redis_base = base["redis_cpu_s"] / base["seconds"] * idle["seconds"]
    return {
        "node_us_per_socket_s_raw": 1e6 * idle["node_cpu_s"] / per,
        "node_us_per_socket_s_net": 1e6 * (idle["node_cpu_s"] - node_base) / per,
        "redis_cpu_us_per_socket_s_net": 1e6 * (idle["redis_cpu_s"] - redis_base) / per,
        "redis_commands_s_per_1k_raw": 1000 * idle["redis_commands_s"] / sockets,
        "redis_commands_s_per_1k_net": 1000 * (idle["redis_commands_s"] - base["redis_commands_s"]) / sockets,
        "baseline_node_cpu_share": base["node_cpu_share"],
        "baseline_redis_commands_s": base["redis_commands_s"],
    }


async def measure_idle(target: Target, args: argparse.Namespace, parts: set[str], result: dict[str, Any]) -> None:
    """Fill result["connect"] (always: the sockets must be opened) and result["upkeep"] if asked."""
    gen = Generator(target)
    run = f"{int(time.time()) % 100000}"
    rooms = [f"idle-{run}-{r}" for r in range(args.idle_rooms)]
    calls = RedisCalls(target.redis_url)
    try:
        await asyncio.sleep(START_QUIET)
        base = None
        if "upkeep" in parts:
            base = await window(target, args.window, calls, "0 sockets")
        rss_before = rss_kb(target.pids)
        durations: list[int] = []
        errors_before = Counter(gen.errors)
        conns, took = await gen.connect(
            args.idle_sockets, lambda i: rooms[i % len(rooms)], concurrency=args.inflight, durations=durations
        )
        failures = +(gen.errors - errors_before)
        connect = result["connect"] = {
            "asked": args.idle_sockets,
            "rooms": len(rooms),
            "inflight": args.inflight,
            "subscribed": len(conns),
            "seconds": took,
            "sockets_s": len(conns) / took if took else math.nan,
            "p50_ms": percentile(durations, 0.50),
            "p99_ms": percentile(durations, 0.99),
            "max_ms": percentile(durations, 1.0),
            "failed": args.idle_sockets - len(conns),
            "failures": dict(failures),
            "gen_cpu_share": gen.connect_cpu_share,
        }
        print(
            f"[{target.name}] connect: {len(conns)}/{args.idle_sockets} subscribed in {len(rooms)} rooms in "
            f"{took:.1f} s ({connect['sockets_s']:,.0f}/s, {args.inflight} in flight), time to subscribed "
            f"p50 {connect['p50_ms']:.0f} p99 {connect['p99_ms']:.0f} ms, failures {dict(failures) or 0}, "
            f"generator CPU {100 * gen.connect_cpu_share:.0f}%",
            flush=True,
        )
        if "upkeep" not in parts or base is None:
            await gen.close(conns)
            return
        await gen.settle()
        await asyncio.sleep(1)
        rss_after = rss_kb(target.pids)
        errors_before = Counter(gen.errors)
        idle = await window(target, args.window, calls, f"{len(conns)} idle sockets")
        still_open = sum(c.open for c in conns)
        upkeep = result["upkeep"] = {
            "sockets": len(conns),
            "open_at_end": still_open,
            "errors_in_window": dict(+(gen.errors - errors_before)),
            "rss_kb_before": rss_before,
            "rss_kb_after": rss_after,
            "kb_per_socket": (rss_after - rss_before) / max(1, len(conns)),
            "baseline": base,
            "idle": idle,
            **upkeep_figures(base, idle, len(conns)),
        }
        if conns:
            print(
                f"[{target.name}] upkeep per idle socket: node CPU {upkeep['node_us_per_socket_s_net']:.2f} us/s net "
                f"({upkeep['node_us_per_socket_s_raw']:.2f} raw), Redis "
                f"{upkeep['redis_commands_s_per_1k_net']:,.1f} commands/s per 1,000 net "
                f"({upkeep['redis_commands_s_per_1k_raw']:,.1f} raw); {still_open} still open; "
                f"RSS {upkeep['kb_per_socket']:.1f} KB per socket",
                flush=True,
            )
        await gen.close(conns)
    finally:
        calls.close()
