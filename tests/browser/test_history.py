"""Older history while scrolling up, and the "new messages" marker while scrolled up."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, seed_code, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

PAGE = 50  # messages per history page (ui/messages.js)


def scroll_up(page: Any, pixels: int) -> None:
    page.locator("#scroller").hover()
    page.mouse.wheel(0, -pixels)


def test_scrolling_up_loads_older_history_and_keeps_the_reading_position(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, author, reader = unique("old"), unique("olga"), unique("reader")
    create_users(cluster, reader, before=seed_code(room, [(author, f"message {i}", 130 - i) for i in range(1, 131)]))
    page = open_chat(browser, cluster, reader, pages_opened, path=f"/rooms/{room}/")
    rows = page.locator("#messages li.msg")
    expect(rows).to_have_count(PAGE)
    expect(rows.first.locator(".body")).to_have_text("message 81")
    expect(page.locator("#messages li.msg .body").last).to_be_in_viewport()

    page.locator("#scroller").evaluate("s => s.scrollTop = 0")
    expect(rows).to_have_count(2 * PAGE)
    # The rows that were on screen stay there: the older page went in above them.
    expect(page.locator('#messages li[data-seq="81"]')).to_be_in_viewport()
    expect(page.locator('#messages li[data-seq="31"]')).not_to_be_in_viewport()

    for _ in range(3):
        scroll_up(page, 3000)
    expect(rows).to_have_count(130)
    expect(page.locator("#history-status")).to_contain_text(f"This is the very beginning of #{room}.")
    seqs = rows.evaluate_all("rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == list(range(1, 131))


def test_new_messages_below_the_view_show_a_marker_and_a_jump_button(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, reader, writer = unique("busy"), unique("rhea"), unique("will")
    earlier = [(writer, f"earlier {i}", 60 - i) for i in range(1, 61)]
    create_users(cluster, reader, writer, before=seed_code(room, earlier))
    page = open_chat(browser, cluster, reader, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(0))
    other = open_chat(browser, cluster, writer, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(1))
    for p in (page, other):
        expect(p.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(page.locator("#messages li.msg")).to_have_count(PAGE)
    scroll_up(page, 500)
    expect(page.locator("#messages li.msg .body").last).not_to_be_in_viewport()

    other.locator("#composer").fill("did you see this?")
    other.locator("#composer").press("Enter")
    jump = page.locator("#jump-new")
    expect(jump).to_be_visible()
    expect(jump).to_have_text("1 new message ↓")
    marker = page.locator("#new-marker")
    expect(marker).to_have_text("New messages")
    # The marker sits right above the first new message.
    expect(page.locator("#new-marker + li.msg .body")).to_have_text("did you see this?")

    jump.click()
    expect(page.locator("#messages li.msg .body").last).to_be_in_viewport()
    expect(jump).to_be_hidden()
    expect(page.locator("#composer")).to_be_focused()
