"""/metrics of real nodes move with traffic: scraped before and after, compared."""

from __future__ import annotations

import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.chaos import wait_for
from tests.cluster import Client, RunningCluster, http_status

pytestmark = pytest.mark.cluster


def scrape(cluster: RunningCluster, index: int) -> dict[str, float]:
    """Every sample of a node's /metrics, labels folded into the name: `name{k=v}`."""
    url = f"http://127.0.0.1:{cluster.node_port(index)}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
            if "le" in sample.labels:
                continue
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


async def test_traffic_moves_the_node_metrics(cluster: RunningCluster) -> None:
    room = "m-" + uuid.uuid4().hex[:8]
    reader_token, writer_token, flooder_token = cluster.tokens("m-reader", "m-writer", "m-flooder")
    before = [scrape(cluster, 0), scrape(cluster, 1)]
    reader = await Client.open(cluster.node_port(0), reader_token)
    writer = await Client.open(cluster.node_port(1), writer_token)
    await reader.subscribe(room)
    for i in range(3):
        await writer.send(type="publish", room=room, body=f"m {i}", ref=f"p{i}")
    assert await reader.seqs(room, 3) == [1, 2, 3]
    # The default budget is a burst of 20 and 10/s. An empty body takes a token, then is
    # refused without a write, so the flood outruns the refill whatever the database.
    flooder = await Client.open(cluster.node_port(1), flooder_token)
    attempts = 0
    while True:
        attempts += 1
        assert attempts <= 200, "never rate limited"
        await flooder.send(type="publish", room=room, body=" ", ref=f"f{attempts}")
        answer = await flooder.until(lambda f, ref=f"f{attempts}": f.get("ref") == ref)
        if answer.get("code") == "rate_limited":
            break
    # Presence entries are read when scraped; the delivery counters move at fan-out.
    await wait_for(
        lambda: (
            scrape(cluster, 0)["chat_messages_delivered_total"] >= before[0].get("chat_messages_delivered_total", 0) + 3
        ),
        10,
        "deliveries counted",
    )
    reading, writing = scrape(cluster, 0), scrape(cluster, 1)

    def moved(after: dict[str, float], earlier: dict[str, float], name: str) -> float:
        return after.get(name, 0) - earlier.get(name, 0)

    assert reading["chat_connections"] >= 1 and reading["chat_subscriptions"] >= 1
    assert reading["chat_rooms_active"] >= 1 and reading["chat_presence_entries"] >= 1
    assert moved(writing, before[1], "chat_messages_published_total") >= 3
    assert moved(reading, before[0], "chat_messages_delivered_total") >= 3
    assert moved(reading, before[0], "chat_publish_to_deliver_seconds_count") >= 3
    assert 0 < moved(reading, before[0], "chat_publish_to_deliver_seconds_sum") < 3 * 5
    assert moved(writing, before[1], "chat_rate_limited_total") >= 1
    assert moved(writing, before[1], "chat_frames_received_total{type=publish}") >= 3 + attempts
    assert reading["chat_draining"] == 0
    assert "chat_send_queue_drops_total" in reading and "chat_send_queue_closes_total" in reading
    for client in (reader, writer, flooder):
        await client.close()


def test_the_public_balancer_refuses_metrics_and_the_nodes_answer_a_direct_scrape(cluster: RunningCluster) -> None:
    assert http_status(f"http://127.0.0.1:{cluster.port}/metrics") == 403
    assert http_status(f"http://127.0.0.1:{cluster.node_port(0)}/metrics") == 200
