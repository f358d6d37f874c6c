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


# The other parts, each shown when it ran, in a table of their own under the first.
IDLE_METRICS: list[tuple[str, Callable[[dict[str, Any]], float], str, bool]] = [
    ("connect from zero (sockets/s)", lambda r: get(r, "connect", "sockets_s"), ",.0f", True),
    ("  time to subscribed p50 (ms)", lambda r: get(r, "connect", "p50_ms"), ",.0f", True),
    ("  time to subscribed p99 (ms)", lambda r: get(r, "connect", "p99_ms"), ",.0f", True),
    ("  subscribed", lambda r: get(r, "connect", "subscribed"), ",.0f", False),
    ("  failed", lambda r: get(r, "connect", "failed"), ",.0f", False),
    ("  handshakes in flight", lambda r: get(r, "connect", "inflight"), ",.0f", False),
]
UPKEEP_METRICS: list[tuple[str, Callable[[dict[str, Any]], float], str, bool]] = [
    ("upkeep: idle subscribed sockets", lambda r: get(r, "upkeep", "sockets"), ",.0f", False),
    ("  node CPU per idle socket, net (us/s)", lambda r: get(r, "upkeep", "node_us_per_socket_s_net"), ",.2f", True),
    ("  node CPU per idle socket, raw (us/s)", lambda r: get(r, "upkeep", "node_us_per_socket_s_raw"), ",.2f", True),
    (
        "  node CPU with 0 sockets (% of a core)",
        lambda r: 100 * get(r, "upkeep", "baseline_node_cpu_share"),
        ",.1f",
        False,
    ),
    (
        "  Redis commands/s per 1,000, net",
        lambda r: get(r, "upkeep", "redis_commands_s_per_1k_net"),
        ",.1f",
        True,
    ),
    (
        "  Redis commands/s per 1,000, raw",
        lambda r: get(r, "upkeep", "redis_commands_s_per_1k_raw"),
        ",.1f",
        True,
    ),
    ("  Redis commands/s with 0 sockets", lambda r: get(r, "upkeep", "baseline_redis_commands_s"), ",.1f", False),
    (
        "  Redis CPU per idle socket, net (us/s)",
        lambda r: get(r, "upkeep", "redis_cpu_us_per_socket_s_net"),
        ",.2f",
        True,
    ),
    ("  memory per idle socket (KB)", lambda r: get(r, "upkeep", "kb_per_socket"), ",.1f", True),
    ("  window (s)", lambda r: get(r, "upkeep", "idle", "seconds"), ",.1f", False),
]
STORM_METRICS: list[tuple[str, Callable[[dict[str, Any]], float], str, bool]] = [
    ("storm: clients on the killed node", lambda r: get(r, "storm", "moved"), ",.0f", False),
    ("  back and caught up, 50 % (s)", lambda r: get(r, "storm", "back_p50_s"), ",.2f", False),
    ("  back and caught up, 99 % (s)", lambda r: get(r, "storm", "back_p99_s"), ",.2f", False),
    ("  back and caught up, 100 % (s)", lambda r: get(r, "storm", "back_100_s"), ",.2f", False),
    ("  clients back", lambda r: get(r, "storm", "back"), ",.0f", False),
    ("  acked messages never received", lambda r: get(r, "storm", "lost"), ",.0f", False),
    (
        "  clients not back at the end",
        lambda r: get(r, "storm", "moved") - get(r, "storm", "back"),
        ",.0f",
        False,
    ),
    ("  messages acked", lambda r: get(r, "storm", "acked"), ",.0f", False),
    ("  connect attempts, all clients", lambda r: get(r, "storm", "connect_attempts"), ",.0f", False),
    ("  connect attempts, most by one", lambda r: get(r, "storm", "connect_attempts_max"), ",.0f", False),
    ("  node B acks/s before the kill", lambda r: get(r, "storm", "before", "ack_rate"), ",.0f", False),
    ("  node B acks/s during the storm", lambda r: get(r, "storm", "during", "ack_rate"), ",.0f", False),
    ("  node B ack p99 before (ms)", lambda r: get(r, "storm", "before", "ack_p99_ms"), ",.1f", False),
    ("  node B ack p99 during (ms)", lambda r: get(r, "storm", "during", "ack_p99_ms"), ",.1f", False),
]


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def table(results: dict[str, dict[str, Any]], parts: set[str] | None = None) -> str:
    """The rates table (as it always was), then one for the other parts that ran."""
    parts = {"rates"} if parts is None else parts
    metrics = [
        *(IDLE_METRICS if parts & {"connect", "upkeep"} else []),
        *(UPKEEP_METRICS if "upkeep" in parts else []),
        *(STORM_METRICS if "storm" in parts else []),
    ]
    tables = [one_table(results, METRICS)] if "rates" in parts else []
    if metrics:
        tables.append(one_table(results, metrics))
    return "\n\n".join(tables)


def one_table(results: dict[str, dict[str, Any]], metrics: list[tuple[str, Any, str, bool]]) -> str:
    def cell(value: float, fmt: str) -> str:
        return "n/a" if math.isnan(value) else format(value, fmt)

    shown = [*SYSTEMS, *(s for s in OPTIONAL_SYSTEMS if s in results)]
    refs = [r for r in ("tutorial", "bare", "uvicorn") if r in shown]
    head = ["metric", *shown, *(f"ours/{ref}" for ref in refs)]
    rows = [head]
    for name, read, fmt, compare in metrics:
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


def details(results: dict[str, dict[str, Any]], parts: set[str]) -> list[str]:
    """What the tables cannot hold: failures by kind, close codes, the storm's checks."""
    lines = []
    for name, result in results.items():
        for key, value in result.items():
            if key.endswith("failed") and isinstance(value, str):
                lines.append(f"{name}: {key} {value}")
        connect = result.get("connect")
        if connect and connect.get("failures"):
            lines.append(f"{name}: connect failures {connect['failures']}")
        upkeep = result.get("upkeep")
        if upkeep:
            top = list(upkeep["idle"]["redis_by_command"].items())[:6]
            seconds = upkeep["idle"]["seconds"]
            lines.append(
                f"{name}: upkeep window Redis commands/s: "
                + (", ".join(f"{cmd} {n / seconds:,.1f}" for cmd, n in top) or "none")
                + f"; {upkeep['open_at_end']}/{upkeep['sockets']} sockets open at the end"
            )
        storm = result.get("storm")
        if storm and "moved" in storm:
            lines.append(
                f"{name}: storm close codes {storm['close_codes']}, handshake failures "
                f"{storm['handshake_failures'] or 0}, publish errors {storm['publish_errors'] or 0}, "
                f"unacked {storm['unacked']}, drained {storm['drained']}, repeats dropped "
                f"{storm['repeats_dropped']}, gap repairs {storm['gap_repairs']}, recovered:false "
                f"{storm['not_recovered']}; not settled at the end {storm['not_settled_at_end'] or 0} "
                f"(owed {storm['owed_to_clients_not_back']} deliveries); generator CPU during "
                f"{100 * storm['gen_cpu_share_during']:.0f}% of all cores"
            )
        elif storm and "failed" in storm:
            lines.append(f"{name}: storm failed {storm['failed']}")
    return lines


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
