"""client.js on its own: the protocol client works with no page around it, and its files are served with DEBUG off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import open_chat, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

# Runs in a bare document of the node's origin (for its cookie): no chat page, no DOM use.
DRIVE_CLIENT = """async (room) => {
  const { ChatClient } = await import("/static/chatcluster/client.js");
  const client = new ChatClient();
  const seqs = [];
  const states = [];
  const until = (type, test) => new Promise((resolve) => {
    const listener = (ev) => {
      if (!test(ev.detail)) return;
      client.removeEventListener(type, listener);
      resolve(ev.detail);
    };
    client.addEventListener(type, listener);
  });
  client.addEventListener("message", (ev) => seqs.push(ev.detail.seq));
  client.addEventListener("state", (ev) => states.push(ev.detail.state));
  client.connect();
  client.subscribe(room);
  await until("subscribed", () => true);
  client.publish(room, "one");
  client.publish(room, "two");
  await until("message", (m) => m.seq === 2);
  // A replayed frame is dropped by seq, not shown twice.
  const ts = new Date().toISOString();
  client._onFrame(JSON.stringify({ type: "message", room, seq: 1, user: "x", body: "one", ts }));
  // The socket drops; a publish made meanwhile waits, then goes out once after the resubscribe.
  client.ws.close();
  client.publish(room, "three");
  await until("message", (m) => m.seq === 3);
  client.close();
  return { seqs, states };
}"""


def test_the_protocol_client_delivers_each_message_once_across_a_dropped_socket(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    page = open_chat(browser, cluster, unique("bot"), pages_opened, path="/healthz", port=cluster.node_port(2))
    result = page.evaluate(DRIVE_CLIENT, unique("api"))
    assert result["seqs"] == [1, 2, 3]
    states = result["states"]
    assert states[:2] == ["connecting", "online"] and "reconnecting" in states and states[-2:] == ["online", "offline"]


@pytest.mark.parametrize(
    "path", ["chatcluster/client.js", "chatcluster/app.js", "chatcluster/ui/messages.js", "chatcluster/app.css"]
)
def test_static_files_are_served_by_every_node_with_debug_off(cluster: RunningCluster, path: str) -> None:
    answer = httpx.get(f"http://127.0.0.1:{cluster.node_port(0)}/static/{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript" if path.endswith(".js") else "text/css")
    assert "max-age" in answer.headers["cache-control"]
