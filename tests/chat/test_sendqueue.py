"""A socket's outbox is bounded by frames and by bytes; from outside, a client that asks
for history and never reads cannot grow its node."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import websockets

from chatcluster.flow import FlowControl, OutFrame
from chatcluster.lifecycle import CLOSE_TOO_SLOW
from chatcluster.sendqueue import SendQueue
from tests.cluster import RunningCluster, http_status


def paused_queue(closed: list[int]) -> SendQueue:
    flow = FlowControl()
    flow.pauseProducing()

    async def close(code: int) -> None:
        closed.append(code)

    async def send_text(text: str) -> None:
        raise AssertionError("a paused socket sends nothing")

    return SendQueue(flow=flow, send_text=send_text, close=close, conn="c1", user="u")


async def test_past_its_byte_budget_the_outbox_is_dropped_and_the_socket_closed(chat_conf: Any) -> None:
    chat_conf.SEND_QUEUE_MAX_BYTES = 100_000
    closed: list[int] = []
    queue = paused_queue(closed)
    for _ in range(2):
        queue.send(OutFrame("x" * 40_000))
    assert not queue.closing and queue.waiting_bytes == 80_000 and queue.backed_up()
    queue.send(OutFrame("x" * 40_000))
    await asyncio.sleep(0)  # the close runs as a task
    assert queue.closing and queue.outbox is None and queue.waiting_bytes == 0
    assert closed == [CLOSE_TOO_SLOW]


async def test_small_frames_still_close_at_the_frame_count(chat_conf: Any) -> None:
    chat_conf.SEND_QUEUE_MAX = 3
    closed: list[int] = []
    queue = paused_queue(closed)
    for _ in range(4):
        queue.send(OutFrame("{}"))
    await asyncio.sleep(0)
    assert closed == [CLOSE_TOO_SLOW]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.cluster
async def test_a_client_that_asks_for_history_and_never_reads_leaves_its_node_small(cluster: RunningCluster) -> None:
    # The attack: a room of long messages, then 300 history requests of 100 each on a socket
    # that never reads. Before, node RSS went from 181 to 642 MB.
    room = "hist-" + uuid.uuid4().hex[:8]
    cluster.shell(
        "from django.contrib.auth.models import User\n"
        "from chatcluster.services.messages import message_create\n"
        "from chatcluster.services.rooms import room_resolve\n"
        "u = User.objects.get_or_create(username='hist-writer')[0]\n"
        f"r = room_resolve(slug={room!r}, user=u, create=True)\n"
        "for i in range(100):\n"
        "    message_create(room=r, author=u, body=chr(0x4e00 + i) * 4000)\n"
    )
    (token,) = cluster.tokens("hist-reader")
    pid = cluster.cluster.pid(cluster.cluster.node_ids()[0])
    before = rss_kb(pid)
    port = cluster.node_port(0)
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/?token={token}",
        additional_headers={"Origin": f"http://127.0.0.1:{port}"},
        max_queue=1,  # read nothing past the first frame: TCP fills, the node's outbox grows
    ) as ws:
        request = json.dumps({"type": "history", "room": room, "limit": 100})
        try:
            for _ in range(300):
                await ws.send(request)
        except websockets.ConnectionClosed:
            pass
        async with asyncio.timeout(15):
            await ws.wait_closed()
        code = ws.close_code
    grown_mb = (rss_kb(pid) - before) / 1024
    print(f"history flood: closed with {code}, node RSS grew {grown_mb:.1f} MB")
    # The node ended the socket (1008 over the history budget, or 1013 past the byte
    # budget); a client that reads nothing never sees the close frame itself (1006).
    assert code in (1006, 1008, CLOSE_TOO_SLOW), code
    assert grown_mb < 40, f"node grew {grown_mb:.0f} MB"
    assert http_status(f"http://127.0.0.1:{port}/readyz") == 200
