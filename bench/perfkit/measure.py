"""What is read from outside the systems: CPU and RSS from /proc, Redis INFO, percentiles."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import redis

CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def percentile(values: list[int], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] / 1e6


class RedisCalls:
    """Commands a system's Redis has run, from `INFO commandstats`, summed over its URLs.

    Commands run inside Lua scripts count one by one (as they do in
    `total_commands_processed`): it is the work Redis does, not the round trips. Our own
    INFO calls are left out.
    """

    def __init__(self, urls: str) -> None:
        self.clients = [redis.Redis.from_url(url, socket_timeout=5) for url in urls.split(",") if url]

    def snapshot(self) -> Counter[str]:
        calls: Counter[str] = Counter()
        for client in self.clients:
            for name, stats in client.info("commandstats").items():
                calls[name.removeprefix("cmdstat_")] += int(stats["calls"])
        return calls

    @staticmethod
    def delta(before: Counter[str], after: Counter[str]) -> Counter[str]:
        out = Counter({name: n - before.get(name, 0) for name, n in after.items() if name != "info"})
        return +out  # drops zero counts

    def close(self) -> None:
        for client in self.clients:
            client.close()


def quantile(values: list[float], q: float) -> float:
    """The q-quantile of plain numbers (nearest rank), NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
