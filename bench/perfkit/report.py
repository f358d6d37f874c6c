"""The report: the table on stdout, the JSON file, the latency plot."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.perfkit.loadgen import P99_LIMIT_MS
from bench.perfkit.systems import OPTIONAL_SYSTEMS, SYSTEMS


def get(result: dict[str, Any] | None, *path: str) -> float:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return math.nan
        value = value[key]
    return float(value)


# (row, how to read it from a system's result, format, whether ours/reference means anything)
METRICS: list[tuple[str, Callable[[dict[str, Any]], float], str, bool]] = [
    ("connect rate (sockets/s)", lambda r: get(r, "connect_per_s"), ",.0f", True),
    ("idle memory per socket (KB)", lambda r: get(r, "idle_kb_per_conn"), ",.1f", True),
    ("sustained deliveries/s", lambda r: get(r, "sustained", "deliveries_s"), ",.0f", True),
    ("  p50 latency there (ms)", lambda r: get(r, "sustained", "p50_ms"), ",.1f", True),
    ("  p95 latency there (ms)", lambda r: get(r, "sustained", "p95_ms"), ",.1f", True),
    ("  p99 latency there (ms)", lambda r: get(r, "sustained", "p99_ms"), ",.1f", True),
    ("  max latency there (ms)", lambda r: get(r, "sustained", "max_ms"), ",.1f", True),
    ("  loss there (%)", lambda r: get(r, "sustained", "loss_pct"), ".2f", True),
    ("node CPU per delivery (us)", lambda r: get(r, "cpu_step", "node_cpu_us_per_delivery"), ",.1f", True),
    ("  measured at offered deliveries/s", lambda r: get(r, "cpu_step", "offered"), ",.0f", False),
    ("publish-to-ack p99 at half (ms)", lambda r: get(r, "ack_step", "ack_p99_ms"), ",.1f", True),
    ("big room connect rate (sockets/s)", lambda r: get(r, "big_connect_per_s"), ",.0f", True),
    ("big room p99 (ms)", lambda r: get(r, "big_room", "p99_ms"), ",.1f", True),
    ("big room loss (%)", lambda r: get(r, "big_room", "loss_pct"), ".2f", True),
    ("big room deliveries/s", lambda r: get(r, "big_room", "deliveries_s"), ",.0f", True),
    ("errors (whole run)", lambda r: float(sum(r["errors"].values())) if "errors" in r else math.nan, ",.0f", True),
    (
        "generator CPU share, max (%)",
        lambda r: 100 * max((s["gen_cpu_share"] for s in r.get("steps", [])), default=math.nan),
        ".0f",
        False,
    ),
]


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def table(results: dict[str, dict[str, Any]]) -> str:
    def cell(value: float, fmt: str) -> str:
        return "n/a" if math.isnan(value) else format(value, fmt)

    shown = [*SYSTEMS, *(s for s in OPTIONAL_SYSTEMS if s in results)]
    refs = [r for r in ("tutorial", "bare", "uvicorn") if r in shown]
    head = ["metric", *shown, *(f"ours/{ref}" for ref in refs)]
    rows = [head]
    for name, read, fmt, compare in METRICS:
        values = {s: read(results[s]) if s in results else math.nan for s in shown}
        ratios = [ratio(values["ours"], values[ref]) if compare else "" for ref in refs]
        rows.append([name, *(cell(values[s], fmt) for s in shown), *ratios])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def finite(value: Any) -> Any:
    """NaN and infinity as null, so the JSON file is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for name in (*SYSTEMS, *OPTIONAL_SYSTEMS):
        result = results.get(name, {})
        rows = sorted((r for r in result.get("steps", []) if not math.isnan(r["p99_ms"])), key=lambda r: r["offered"])
        if not rows:
            continue
        (line,) = ax.plot([r["offered"] for r in rows], [r["p99_ms"] for r in rows], marker="o", label=name)
        # The ack step is a later run at half the sustained rate: a point, not part of the curve.
        ack = result.get("ack_step")
        if ack and not math.isnan(ack["p99_ms"]):
            ax.plot([ack["offered"]], [ack["p99_ms"]], marker="x", linestyle="", color=line.get_color())
    ax.plot([], [], marker="x", linestyle="", color="grey", label="ack step (half the sustained rate)")
    ax.axhline(P99_LIMIT_MS, color="grey", linestyle="--", linewidth=1, label=f"{P99_LIMIT_MS:.0f} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered deliveries/s")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
