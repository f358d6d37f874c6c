"""Ctrl-C on `runcluster`: every node drains at once, an idle one exits at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster import Client, RunningCluster, start_cluster, wait_until
from tests.conftest import CLUSTER_ENV

pytestmark = pytest.mark.cluster

# Long enough that nodes stopped one after another (3 x DRAIN_GRACE) could not pass.
DRAIN_GRACE = 4
# What Ctrl-C may take on top of the drain (issue 14: 5 s idle, DRAIN_GRACE + 5 with sockets).
STOP_BOUND = 5.0


def processes(running: RunningCluster) -> list[int]:
    """The pids of every part supervisord runs (nodes, Redis, balancer)."""
    return [running.cluster.pid(name) for name in (*running.cluster.node_ids(), "balancer")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is gone for our purpose.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def interrupt(running: RunningCluster) -> float:
    """Send runcluster SIGINT, as a terminal's Ctrl-C does; seconds until it has exited."""
    started = time.monotonic()
    running.process.send_signal(signal.SIGINT)
    try:
        running.process.wait(DRAIN_GRACE * 3 + 10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        raise
    return time.monotonic() - started


def test_ctrl_c_stops_an_idle_cluster_within_seconds(tmp_path: Path) -> None:
    running = start_cluster(tmp_path, env={**CLUSTER_ENV, "DRAIN_GRACE": str(DRAIN_GRACE)})
    try:
        pids = processes(running)
        took = interrupt(running)
        assert took <= STOP_BOUND, f"Ctrl-C on an idle cluster took {took:.1f} s\n{running.log_tails()}"
        assert running.process.returncode == 0
        wait_until(lambda: not any(alive(pid) for pid in pids), 5)
    finally:
        running.stop()


async def test_ctrl_c_drains_open_sockets_of_every_node_at_once(tmp_path: Path) -> None:
    running = start_cluster(tmp_path, env={**CLUSTER_ENV, "DRAIN_GRACE": str(DRAIN_GRACE)})
    try:
        tokens = running.tokens("ctrlc0", "ctrlc1", "ctrlc2")
        # Straight to the nodes: the balancer is the first part supervisord stops.
        clients = [await Client.open(running.node_port(i), tokens[i]) for i in range(3)]
        for client in clients:
            assert (await client.subscribe("lobby"))["type"] == "subscribed"
        started = time.monotonic()
        running.process.send_signal(signal.SIGINT)
        codes = [await client.closed(timeout=DRAIN_GRACE + STOP_BOUND) for client in clients]
        closed_after = time.monotonic() - started
        # Each node drained its socket with 1012 (service restart), so clients reconnect.
        assert codes == [1012, 1012, 1012]
        # In parallel: all three within one DRAIN_GRACE, not one after another.
        assert closed_after <= DRAIN_GRACE + STOP_BOUND
        running.process.wait(STOP_BOUND)
        took = time.monotonic() - started
        assert took <= DRAIN_GRACE + STOP_BOUND, f"took {took:.1f} s\n{running.log_tails()}"
    finally:
        running.stop()
