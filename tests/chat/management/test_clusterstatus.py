from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cluster import ROOT, RunningCluster, wait_until

pytestmark = pytest.mark.cluster


def status(cluster: RunningCluster) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "clusterstatus"], cwd=ROOT, env=cluster.env, capture_output=True, text=True
    ).stdout


def test_lists_exactly_the_live_nodes(cluster: RunningCluster) -> None:
    wait_until(lambda: "3 live node(s)" in status(cluster), timeout=15)
    out = status(cluster)
    for node_id in ("node1", "node2", "node3"):
        assert f"\n{node_id} " in out
    assert f"127.0.0.1:{cluster.node_port(0)}" in out
