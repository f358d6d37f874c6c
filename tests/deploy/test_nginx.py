"""nginx in front of a real cluster: WebSockets pass, the route cookie pins, a drain sheds sockets.

The cluster is `runcluster --balancer nginx` with the config rendered from
chat/cluster_files/nginx.conf.template, three daphne nodes and the test Redis.
"""

from __future__ import annotations

import asyncio
import math
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.cluster import Client, RunningCluster, http_status, start_cluster, wait_until
from tests.slow_clients import slow_heads

pytestmark = [pytest.mark.cluster]

NGINX_ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    # Long enough to open sockets through nginx while one node drains.
    "DRAIN_GRACE": "2",
    # On PostgreSQL the nodes go through psycopg's pool, as deployments do (ignored on SQLite).
    "DB_POOL": "true",
    # nginx's client_header_timeout follows it: a slowloris test that takes seconds.
    "NODE_HEADER_TIMEOUT": "2",
}
ROUTE_COOKIE = "chat_route"


@pytest.fixture(scope="module")
def behind_nginx(nginx: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    # A Redis of its own: its nodes are named node1..3 like the session cluster's, and
    # would share that cluster's node registry, presence and socket counts otherwise.
    running = start_cluster(tmp_path_factory.mktemp("nginx"), env=NGINX_ENV, balancer="nginx", private_redis=True)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _all_nodes_ready(behind_nginx: RunningCluster) -> None:
    for index in range(3):
        behind_nginx.wait_node_ready(index, timeout=30)


def room() -> str:
    return "n-" + uuid.uuid4().hex[:10]


def node_of(response: httpx.Response | websockets.ClientConnection) -> str:
    headers = response.headers if isinstance(response, httpx.Response) else response.response.headers
    return str(headers["X-Chat-Node"])


async def open_routed(port: int, token: str, route: str) -> Client:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/?token={token}",
        additional_headers={"Origin": f"http://127.0.0.1:{port}", "Cookie": f"{ROUTE_COOKIE}={route}"},
        max_queue=None,
        open_timeout=5,
    )
    return Client(ws)


async def routes_by_node(port: int, nodes: int) -> dict[str, str]:
    """A route cookie nginx hands out for each node, found by asking until each was named."""
    found: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(200):
            answer = await client.get("/healthz")
            client.cookies.clear()
            found.setdefault(node_of(answer), answer.cookies[ROUTE_COOKIE])
            if len(found) == nodes:
                return found
    raise AssertionError(f"200 fresh cookies reached only {sorted(found)}")


async def test_websockets_work_through_nginx(behind_nginx: RunningCluster) -> None:
    r = room()
    alice_token, bob_token = behind_nginx.tokens("nx-alice", "nx-bob")
    alice = await Client.open(behind_nginx.port, alice_token)
    bob = await Client.open(behind_nginx.port, bob_token)
    assert (await alice.subscribe(r))["type"] == "subscribed"
    assert (await bob.subscribe(r))["type"] == "subscribed"
    await alice.send(type="publish", room=r, body="through nginx", ref="p1")
    ack = await alice.until(lambda f: f.get("ref") == "p1")
    assert ack["type"] == "ack", ack
    message = await bob.until(lambda f: f["type"] == "message" and f["room"] == r)
    assert (message["seq"], message["user"], message["body"]) == (ack["seq"], "nx-alice", "through nginx")
    # The handshake answer names its node and hands out a route cookie.
    assert node_of(alice.ws).startswith("node")
    assert f"{ROUTE_COOKIE}=" in alice.ws.response.headers.get("Set-Cookie", "")
    await alice.close()
    await bob.close()


async def test_the_route_cookie_pins_requests_and_sockets_to_one_node(behind_nginx: RunningCluster) -> None:
    routes = await routes_by_node(behind_nginx.port, 3)
    (token,) = behind_nginx.tokens("nx-sticky")
    for node, route in routes.items():
        base = f"http://127.0.0.1:{behind_nginx.port}"
        async with httpx.AsyncClient(base_url=base, cookies={ROUTE_COOKIE: route}) as http:
            answers = [await http.get("/healthz") for _ in range(5)]
        assert {node_of(answer) for answer in answers} == {node}
        # A client that has the cookie is not given another one.
        assert all(ROUTE_COOKIE not in answer.cookies for answer in answers)
        sockets = [await open_routed(behind_nginx.port, token, route) for _ in range(3)]
        assert {node_of(client.ws) for client in sockets} == {node}
        for client in sockets:
            await client.close()


async def test_a_draining_node_gets_no_new_sockets_through_nginx(behind_nginx: RunningCluster) -> None:
    port = behind_nginx.port
    routes = await routes_by_node(port, 3)
    drained = "node2"
    index = int(drained[4:]) - 1
    route = routes[drained]
    tokens = behind_nginx.tokens(*[f"nx-drain{i}" for i in range(7)])
    r = room()
    before = await open_routed(port, tokens[0], route)
    assert node_of(before.ws) == drained
    assert (await before.subscribe(r))["type"] == "subscribed"

    behind_nginx.kill_node(index, signal.SIGTERM)
    node_url = f"http://127.0.0.1:{behind_nginx.node_port(index)}"
    await asyncio.to_thread(wait_until, lambda: http_status(node_url + "/readyz") == 503, 5, 0.05)
    # The node itself refuses the handshake with 503: what nginx retries elsewhere.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"ws://127.0.0.1:{behind_nginx.node_port(index)}/ws/?token={tokens[0]}")
    assert refused.value.response.status_code == 503

    # Every new socket routed to the draining node lands elsewhere, and works.
    during = [await open_routed(port, token, route) for token in tokens[1:]]
    assert drained not in {node_of(client.ws) for client in during}
    for client in during:
        assert (await client.subscribe(r))["type"] == "subscribed"
    # All of that happened inside the drain window: the first socket is still open.
    assert http_status(node_url + "/healthz") == 200
    await before.send(type="ping", ref="still-here")
    assert (await before.until(lambda f: f.get("ref") == "still-here"))["type"] == "pong"

    # At the end of its grace the drained node closes its sockets with 1012.
    assert await before.closed(timeout=15) == 1012
    for client in during:
        await client.close()
    behind_nginx.wait_node_ready(index, timeout=30)


async def test_slowloris_connections_through_nginx_are_closed_at_the_head_deadline(
    behind_nginx: RunningCluster,
) -> None:
    deadline = float(NGINX_ENV["NODE_HEADER_TIMEOUT"])
    held = await slow_heads(behind_nginx.port, 400, give_up=deadline + 10)
    print(f"400 slowloris sockets at nginx: closed after {min(held):.2f}-{max(held):.2f} s")
    assert not [s for s in held if math.isinf(s)], f"{sum(map(math.isinf, held))} never closed"
    # nginx checks its timers about every 0.5 s; the rest is a busy machine.
    assert deadline * 0.75 <= min(held) and max(held) <= deadline + 4
    assert http_status(f"http://127.0.0.1:{behind_nginx.port}/readyz") == 200


async def test_the_nginx_access_log_never_holds_a_token(behind_nginx: RunningCluster) -> None:
    (token,) = behind_nginx.tokens("nx-logged")
    client = await Client.open(behind_nginx.port, token)
    await client.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{behind_nginx.port}") as http:
        assert (await http.get("/healthz", params={"token": token})).status_code == 200
    access_log = behind_nginx.cluster.run_dir / "nginx-access.log"
    # nginx writes a WebSocket's line when the connection ends.
    await asyncio.to_thread(wait_until, lambda: '" 101 ' in access_log.read_text(), 10)
    text = access_log.read_text()
    assert token not in text and "token=" not in text
    assert '"GET /ws/ HTTP/1.1" 101' in text and '"GET /healthz HTTP/1.1" 200' in text
