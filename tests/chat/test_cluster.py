"""Real processes: Redis, 3 daphne nodes and Caddy, started through `runcluster`."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest

from chatcluster import cluster as cluster_module
from chatcluster.cluster import Cluster, ClusterError, render_template
from tests.cluster import Client, RunningCluster, http_status, wait_until

pytestmark = pytest.mark.cluster


def room() -> str:
    return "c-" + uuid.uuid4().hex[:10]


def test_every_node_and_the_balancer_are_healthy_and_ready(cluster: RunningCluster) -> None:
    for port in [cluster.port] + [cluster.node_port(i) for i in range(3)]:
        assert http_status(f"http://127.0.0.1:{port}/healthz") == 200
        assert http_status(f"http://127.0.0.1:{port}/readyz") == 200


async def test_concurrent_publishers_on_three_nodes_all_see_one_gapless_order(cluster: RunningCluster) -> None:
    r = room()
    tokens = cluster.tokens(*[f"pub{i}" for i in range(6)])
    clients = [await Client.open(cluster.node_port(i % 3), t) for i, t in enumerate(tokens)]
    for client in clients:
        assert (await client.subscribe(r))["type"] == "subscribed"

    async def publish_all(index: int, client: Client) -> list[int]:
        for k in range(20):
            await client.send(type="publish", room=r, body=f"{index}:{k}", ref=f"{index}-{k}")
        acks = []
        for k in range(20):
            ack = await client.until(lambda f, k=k: f.get("ref") == f"{index}-{k}", timeout=30)
            assert ack["type"] == "ack", ack
            acks.append(ack["seq"])
        return acks

    acks = await asyncio.gather(*(publish_all(i, c) for i, c in enumerate(clients)))
    assert sorted(seq for a in acks for seq in a) == list(range(1, 121))
    for client in clients:
        assert await client.seqs(r, 120, timeout=30) == list(range(1, 121))
    for client in clients:
        await client.close()


async def test_a_client_that_reconnects_to_another_node_with_since_gets_exactly_what_it_missed(
    cluster: RunningCluster,
) -> None:
    r = room()
    away_token, stay_token = cluster.tokens("away", "stay")
    away = await Client.open(cluster.node_port(0), away_token)
    stay = await Client.open(cluster.node_port(1), stay_token)
    await away.subscribe(r)
    await stay.subscribe(r)
    for k in range(3):
        await stay.send(type="publish", room=r, body=f"before {k}", ref=f"b{k}")
    assert await away.seqs(r, 3) == [1, 2, 3]
    await away.close()
    for k in range(4):
        await stay.send(type="publish", room=r, body=f"missed {k}", ref=f"m{k}")
        await stay.until(lambda f, k=k: f.get("ref") == f"m{k}")
    back = await Client.open(cluster.node_port(2), away_token)
    subscribed = await back.subscribe(r, since=3)
    assert subscribed["recovered"] is True and subscribed["seq"] == 7
    replayed = [f for f in back.frames if f["type"] == "message"]
    assert [f["seq"] for f in replayed] == [4, 5, 6, 7]
    assert [f["body"] for f in replayed] == [f"missed {k}" for k in range(4)]
    await stay.send(type="publish", room=r, body="live", ref="live")
    assert await back.seqs(r, 5) == [4, 5, 6, 7, 8]
    await back.close()
    await stay.close()


async def test_a_client_through_the_balancer_works_the_same(cluster: RunningCluster) -> None:
    r = room()
    lb_token, node_token = cluster.tokens("vialb", "direct")
    via_lb = await Client.open(cluster.port, lb_token)
    direct = await Client.open(cluster.node_port(2), node_token)
    await via_lb.subscribe(r)
    await direct.subscribe(r)
    await via_lb.send(type="publish", room=r, body="through caddy", ref="x")
    assert (await via_lb.until(lambda f: f.get("ref") == "x"))["type"] == "ack"
    assert (await direct.until(lambda f: f["type"] == "message"))["body"] == "through caddy"
    await via_lb.close()
    await direct.close()


def test_a_node_killed_with_sigkill_is_started_again(cluster: RunningCluster) -> None:
    old = cluster.kill_node(1)
    wait_until(lambda: cluster.cluster.pid("node2") not in (0, old), timeout=20)
    cluster.wait_node_ready(1)
    assert http_status(f"http://127.0.0.1:{cluster.node_port(1)}/readyz") == 200


def test_without_nginx_the_nginx_balancer_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cluster_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(cluster_module, "NGINX_FALLBACK", tmp_path / "no-nginx")
    with pytest.raises(ClusterError, match=r"apt-get install -y nginx.*--balancer caddy"):
        Cluster(balancer="nginx", run_dir=tmp_path, redis_url="redis://127.0.0.1:1/0").write_config()


def test_the_nginx_config_names_every_node_and_leaves_no_placeholder(tmp_path: Path) -> None:
    cluster = Cluster(nodes=4, port=30000, balancer="nginx", run_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    conf = cluster.nginx_conf()
    assert "{{" not in conf
    assert [f"127.0.0.1:{cluster.node_port(i)}" for i in range(4)] == re.findall(r"server (127\.0\.0\.1:\d+) ", conf)
    assert "listen 127.0.0.1:30000;" in conf


def test_a_template_placeholder_without_a_value_is_an_error() -> None:
    with pytest.raises(ClusterError, match="no value for"):
        render_template("listen {{port}}; root {{nowhere}};", {"port": 1})
