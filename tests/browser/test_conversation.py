"""Three users on three nodes: messages in order everywhere, the online list, the typing line."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]


def test_messages_appear_on_every_users_page_in_order_grouped_by_author(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room = unique("talk")
    names = [unique(n) for n in ("ann", "ben", "cat")]
    create_users(cluster, *names)
    pages = [
        open_chat(browser, cluster, name, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(i))
        for i, name in enumerate(names)
    ]
    for page in pages:
        expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)

    script = [(0, "morning all"), (0, "standup in 5"), (1, "on my way"), (2, "same"), (0, "great")]
    for who, body in script:
        composer = pages[who].locator("#composer")
        composer.fill(body)
        composer.press("Enter")
        # Wait for our own copy: the next sender's message then has the next seq.
        expect(pages[who].locator("#messages li.msg .body").last).to_have_text(body)
    bodies = [body for _, body in script]
    for page in pages:
        expect(page.locator("#messages li.msg .body")).to_have_text(bodies)
        seqs = [int(s) for s in page.locator("#messages li.msg").evaluate_all("rows => rows.map(r => r.dataset.seq)")]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for me, page in enumerate(pages):
        # ann's first two messages share one header; each change of author starts a new one.
        grouping = ["msg", "msg cont", "msg", "msg", "msg"]
        expected = [cls + (" mine" if who == me else "") for cls, (who, _) in zip(grouping, script, strict=True)]
        expect(page.locator("#messages li.msg")).to_have_class(expected)
        expect(page.locator("#messages li.msg .author")).to_have_text([names[0], names[1], names[2], names[0]])


def test_the_online_list_and_typing_line_follow_other_users_across_nodes(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room = unique("here")
    ann, ben = unique("ann"), unique("ben")
    create_users(cluster, ann, ben)
    first = open_chat(browser, cluster, ann, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(0))
    expect(first.locator("#online .member-name")).to_have_text([ann], timeout=10_000)
    expect(first.locator("#online .you")).to_have_count(1)
    second = open_chat(browser, cluster, ben, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(1))
    for page in (first, second):
        expect(page.locator("#online .member-name")).to_have_text(sorted([ann, ben]), timeout=10_000)
        expect(page.locator("#online-count")).to_have_text("2")

    second.locator("#composer").press_sequentially("hel")
    expect(first.locator("#typing")).to_have_text(f"{ben} is typing…")
    second.locator("#composer").press("Enter")
    # The message ends the typing line (without it, the line fades a few seconds after the last key).
    expect(first.locator("#messages li.msg .body")).to_have_text(["hel"])
    expect(first.locator("#typing")).to_have_text("")

    second.context.close()
    expect(first.locator("#online .member-name")).to_have_text([ann], timeout=10_000)


def test_message_times_are_relative_and_keep_up_with_the_clock(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    page = open_chat(browser, cluster, unique("tim"), pages_opened, path=f"/rooms/{unique('time')}/", fake_clock=True)
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    page.locator("#composer").fill("what time is it?")
    page.locator("#composer").press("Enter")
    stamp = page.locator("#messages li.msg .ts")
    expect(stamp).to_have_text("just now")
    page.clock.fast_forward("03:00")
    expect(stamp).to_have_text("3 min ago")
