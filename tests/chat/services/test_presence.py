"""Presence across real nodes (PRESENCE_TTL=4 s, PRESENCE_GRACE=2 s in the test cluster)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.cluster import Client, RunningCluster
from tests.conftest import CLUSTER_ENV

pytestmark = pytest.mark.cluster
TTL = float(CLUSTER_ENV["PRESENCE_TTL"])


def room() -> str:
    return "p-" + uuid.uuid4().hex[:10]


def presence(frame: dict[str, Any], r: str) -> bool:
    return frame["type"] == "presence" and frame["room"] == r


async def quiet(client: Client, predicate: Any, seconds: float) -> None:
    """Assert that no frame matching `predicate` arrives within `seconds`."""
    with pytest.raises(TimeoutError):
        await client.until(predicate, timeout=seconds)


async def test_a_join_on_one_node_is_a_joined_diff_on_the_others(cluster: RunningCluster) -> None:
    r = room()
    ta, tb = cluster.tokens("pa", "pb")
    a = await Client.open(cluster.node_port(0), ta)
    assert (await a.subscribe(r))["presence"] == ["pa"]
    b = await Client.open(cluster.node_port(1), tb)
    assert (await b.subscribe(r))["presence"] == ["pa", "pb"]
    diff = await a.until(lambda f: presence(f, r) and "pb" in f["joined"])
    assert diff["left"] == []
    await b.close()
    assert (await a.until(lambda f: presence(f, r) and f["left"], timeout=2))["left"] == ["pb"]
    await a.close()


async def test_two_tabs_on_two_nodes_are_one_user_until_the_last_goes(cluster: RunningCluster) -> None:
    r = room()
    tw, t1 = cluster.tokens("watcher", "twotabs")
    watcher = await Client.open(cluster.node_port(2), tw)
    await watcher.subscribe(r)
    tab1 = await Client.open(cluster.node_port(0), t1)
    tab2 = await Client.open(cluster.node_port(1), t1)
    await tab1.subscribe(r)
    assert (await tab2.subscribe(r))["presence"] == ["twotabs", "watcher"]
    await watcher.until(lambda f: presence(f, r) and f["joined"] == ["twotabs"])
    await tab1.close()
    await quiet(watcher, lambda f: presence(f, r) and "twotabs" in f["left"], 1.5)
    await tab2.close()
    assert (await watcher.until(lambda f: presence(f, r), timeout=2))["left"] == ["twotabs"]
    await watcher.close()


async def test_a_killed_node_s_users_are_reported_left_once_within_ttl_plus_2s(cluster: RunningCluster) -> None:
    r = room()
    tv, tw, tx = cluster.tokens("victim", "witness1", "witness2")
    witnesses = [await Client.open(cluster.node_port(1), tw), await Client.open(cluster.node_port(2), tx)]
    for w in witnesses:
        await w.subscribe(r)
    victim = await Client.open(cluster.node_port(0), tv)
    await victim.subscribe(r)
    for w in witnesses:
        await w.until(lambda f: presence(f, r) and "victim" in f["joined"])
    killed_at = time.monotonic()
    cluster.kill_node(0)
    for w in witnesses:
        await w.until(lambda f: presence(f, r) and f["left"] == ["victim"], timeout=TTL + 2)
    elapsed = time.monotonic() - killed_at
    print(f"kill -9 to left: {elapsed:.2f} s (TTL {TTL} s)")
    assert elapsed <= TTL + 2
    for w in witnesses:
        await quiet(w, lambda f: presence(f, r) and "victim" in f["left"], 2)
        await w.close()
    cluster.wait_node_ready(0)


async def test_a_quick_reconnect_after_a_drop_does_not_flicker(cluster: RunningCluster) -> None:
    r = room()
    tw, tf = cluster.tokens("observer", "flaky")
    observer = await Client.open(cluster.node_port(1), tw)
    await observer.subscribe(r)
    flaky = await Client.open(cluster.node_port(0), tf)
    await flaky.subscribe(r)
    await observer.until(lambda f: presence(f, r) and f["joined"] == ["flaky"])
    flaky.ws.transport.abort()  # a dropped connection, no close frame
    back = await Client.open(cluster.node_port(2), tf)
    assert "flaky" in (await back.subscribe(r))["presence"]
    await quiet(observer, lambda f: presence(f, r) and "flaky" in f["left"] + f["joined"], 3)
    await back.close()
    await observer.close()


async def test_typing_reaches_others_not_the_sender_and_is_throttled(cluster: RunningCluster) -> None:
    r = room()
    ta, tb = cluster.tokens("typist", "reader")
    typist = await Client.open(cluster.node_port(0), ta)
    reader = await Client.open(cluster.node_port(1), tb)
    await typist.subscribe(r)
    await reader.subscribe(r)
    for _ in range(5):
        await typist.send(type="typing", room=r)
    frame = await reader.until(lambda f: f["type"] == "typing")
    assert frame == {"type": "typing", "room": r, "user": "typist"}
    await quiet(reader, lambda f: f["type"] == "typing", 1)
    await quiet(typist, lambda f: f["type"] == "typing", 0.2)
    await typist.send(type="history", room=r, ref="h")
    assert (await typist.until(lambda f: f.get("ref") == "h"))["messages"] == []
    await typist.close()
    await reader.close()


async def test_a_killed_node_announces_left_once_and_only_for_users_it_alone_held(cluster: RunningCluster) -> None:
    r = room()
    tw, tv, tt, th = cluster.tokens("k-witness", "k-victim", "k-twotabs", "k-hopper")
    witness = await Client.open(cluster.node_port(2), tw)
    await witness.subscribe(r)
    victim, hopper = await Client.open(cluster.node_port(0), tv), await Client.open(cluster.node_port(0), th)
    tabs = [await Client.open(cluster.node_port(0), tt), await Client.open(cluster.node_port(1), tt)]
    for client in (victim, hopper, *tabs):
        await client.subscribe(r)
    joined: set[str] = set()
    while joined != {"k-victim", "k-hopper", "k-twotabs"}:
        joined |= set((await witness.until(lambda f: presence(f, r) and f["joined"]))["joined"])
    killed_at = time.monotonic()
    cluster.kill_node(0)
    # The hopper is back on another node well within PRESENCE_GRACE of the drop.
    hopped = await Client.open(cluster.node_port(2), th)
    await hopped.subscribe(r)
    left: list[str] = []
    while "k-victim" not in left:
        left += (await witness.until(lambda f: presence(f, r) and f["left"], timeout=TTL + 5))["left"]
    assert time.monotonic() - killed_at <= TTL + 5
    # Wait out another sweep round or two: nothing else leaves, and the victim only once.
    with pytest.raises(TimeoutError):
        while True:
            left += (await witness.until(lambda f: presence(f, r) and f["left"], timeout=2))["left"]
    assert left == ["k-victim"]
    for client in (witness, hopped, tabs[1]):
        await client.close()
    cluster.wait_node_ready(0)
