"""A node killed with kill -9 under an open page: the banner, recovery, and pending sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

# supervisord restarts the node within seconds; the page's backoff adds at most 10 s.
RECOVERY_MS = 40_000


@pytest.fixture
def killed_later(cluster: RunningCluster) -> Iterator[list[int]]:
    """Indexes of nodes a test kills: the test after it starts only once they are ready again."""
    killed: list[int] = []
    yield killed
    for index in killed:
        cluster.wait_node_ready(index)


BANNER_LOG = """() => {
  window.bannerTexts = [];
  const text = document.getElementById("banner-text");
  new MutationObserver(() => window.bannerTexts.push(text.textContent)).observe(text, { childList: true });
}"""


def bodies(page: Any) -> Any:
    return page.locator("#messages li.msg .body")


def assert_each_seq_once(page: Any) -> None:
    seqs = page.locator("#messages li.msg").evaluate_all("rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == sorted(set(seqs)), seqs


def two_users_on_two_nodes(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any], victim: int, survivor: int
) -> tuple[Any, Any]:
    room = unique("crash")
    reader, writer = unique("rita"), unique("walt")
    create_users(cluster, reader, writer)
    doomed = open_chat(browser, cluster, reader, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(victim))
    other = open_chat(browser, cluster, writer, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(survivor))
    for page in (doomed, other):
        expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    other.locator("#composer").fill("before the crash")
    other.locator("#composer").press("Enter")
    expect(bodies(doomed)).to_have_text(["before the crash"])
    return doomed, other


def test_a_page_whose_node_is_killed_reconnects_gets_what_it_missed_and_sends_what_was_written_meanwhile_once(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any], killed_later: list[int]
) -> None:
    # One kill covers both: a node restart is the slowest step of the browser suite.
    doomed, other = two_users_on_two_nodes(browser, cluster, pages_opened, victim=2, survivor=0)
    # Every text the banner shows, however briefly (a countdown lasts one backoff delay).
    doomed.evaluate(BANNER_LOG)
    killed_later.append(2)
    cluster.kill_node(2)
    expect(doomed.locator("#banner")).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    expect(doomed.locator("#banner-text")).to_have_text(re.compile(r"^Reconnecting"))
    expect(doomed.locator("#banner-retry")).to_be_visible()

    # Written while the socket is down: kept, and marked as waiting for the connection.
    doomed.locator("#composer").fill("typed while offline")
    doomed.locator("#composer").press("Enter")
    waiting = doomed.locator("#pending li.pending")
    expect(waiting).to_have_attribute("data-status", "waiting")
    expect(waiting.locator(".body")).to_have_text("typed while offline")
    expect(waiting.locator(".status")).to_have_text(re.compile("Pending"))

    # Sent by another user on another node while this page is away.
    missed = ["while you were away 1", "while you were away 2", "while you were away 3"]
    for body in missed:
        other.locator("#composer").fill(body)
        other.locator("#composer").press("Enter")
    expect(bodies(other)).to_have_text(["before the crash", *missed])

    expect(doomed.locator("#banner")).to_have_attribute("data-state", "online", timeout=RECOVERY_MS)
    expect(doomed.locator("#banner-text")).to_have_text("Online")
    shown = doomed.evaluate("window.bannerTexts")
    assert any(re.fullmatch(r"Reconnecting in \d+ s…", text) for text in shown), shown
    # Back on a socket, the page first replays what it missed, and says so.
    assert shown[-2:] == ["Catching up…", "Online"], shown
    expect(doomed.locator("#pending li")).to_have_count(0)
    # The pending message could be stored only once the page was back: after the three.
    everything = ["before the crash", *missed, "typed while offline"]
    for page in (doomed, other):
        expect(bodies(page)).to_have_text(everything)
        assert_each_seq_once(page)
