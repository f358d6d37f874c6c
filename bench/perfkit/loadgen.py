"""The load generator: picows sockets on uvloop, in rooms, publishing at a paced rate."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from picows import WSCloseCode, WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.perfkit.measure import CORES, cpu_seconds, percentile
from bench.perfkit.systems import Target
from chatcluster.client import frames as wire

P99_LIMIT_MS = 250.0
LOSS_LIMIT_PCT = 1.0
# A step whose deliveries/s stay under this share of the offered rate fell behind.
BEHIND = 0.9
PUBLISHERS_PER_ROOM = 5
CONNECT_CONCURRENCY = 64
# Seconds after which a setup stops opening sockets and goes on with those it has.
CONNECT_LIMIT = 120
# The publisher wakes this often; each wake sends what is due, so the pace holds even
# when a wake comes late, while no burst exceeds MAX_BURST frames.
TICK = 0.002
MAX_BURST = 500
TEXT = WSMsgType.TEXT


class Frame(msgspec.Struct):
    type: str
    body: str = ""
    ref: str = ""
    code: str = ""


DECODE = msgspec.json.Decoder(Frame).decode


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

    async def connect(
        self,
        count: int,
        room_of: Callable[[int], str],
        concurrency: int = CONNECT_CONCURRENCY,
        durations: list[int] | None = None,
    ) -> tuple[list[Conn], float]:
        """`count` sockets, each in its room and ready for traffic, and the seconds that took.

        At most `concurrency` handshakes (and subscribes) are in flight; `durations` gets
        each ready socket's nanoseconds from the start of its handshake to ready.
        """
        limit = asyncio.Semaphore(concurrency)
        give_up = time.monotonic() + CONNECT_LIMIT

        async def one(index: int) -> Conn | None:
            room = room_of(index)
            conn = Conn(self, room)
            async with limit:
                if time.monotonic() > give_up:
                    self.errors["connect: out of time"] += 1
                    return None
                began = time.perf_counter_ns()
                try:
                    await ws_connect(lambda: conn, self.target.url(index, room), websocket_handshake_timeout=10)
                except (WSError, OSError, TimeoutError) as exc:
                    self.errors[f"connect {type(exc).__name__}"] += 1
                    return None
                if self.target.subscribes:
                    conn.transport.send(TEXT, wire.encode_subscribe(room, ref="s"))
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
            if durations is not None:
                durations.append(time.perf_counter_ns() - began)
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
                conn.transport.send(TEXT, wire.encode_publish(conn.room, f"{self.tag}:{now}", ref=ref))
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
