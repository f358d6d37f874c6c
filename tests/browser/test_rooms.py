"""The rooms sidebar: private rooms stay private, unread counts survive a reload."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, seed_code, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]


READS_SENT = "performance.getEntriesByType('resource').filter(e => /\\/read$/.test(e.name)).length"


def reads_sent(page: Any) -> int:
    """How many read markers the page has sent to the server (resource timing sees each POST)."""
    return int(page.evaluate(READS_SENT))


def wait_reads_sent(page: Any, more_than: int) -> None:
    page.wait_for_function(f"n => {READS_SENT} > n", arg=more_than)


def test_a_private_room_is_invisible_to_a_non_member(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    owner, outsider, secret, lobby = unique("olive"), unique("oscar"), unique("secret"), unique("lobby")
    create_users(cluster, owner, outsider)
    page = open_chat(browser, cluster, owner, pages_opened, path=f"/rooms/{lobby}/", port=cluster.node_port(0))
    page.locator("#new-room-slug").fill(secret)
    page.locator("#new-room-private").check()
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(f"/rooms/{secret}/$"))
    expect(page.locator(f'#room-list li[data-room="{secret}"] .room-link')).to_have_class(re.compile("private"))
    page.locator("#composer").fill("the secret plans")
    page.locator("#composer").press("Enter")
    expect(page.locator("#messages li.msg .body")).to_have_text(["the secret plans"])

    spy = open_chat(browser, cluster, outsider, pages_opened, path=f"/rooms/{secret}/", port=cluster.node_port(1))
    expect(spy.locator("#room-empty h2")).to_have_text(f"#{secret} is private")
    expect(spy.locator("#composer")).to_be_disabled()
    expect(spy.locator(f'#room-list li[data-room="{secret}"]')).to_have_count(0)

    # The page of the room list where each would be (other tests leave many rooms before them).
    def listed(slug: str) -> list[str]:
        return [room["slug"] for room in spy.request.get(f"/api/rooms?after={slug[:-1]}&limit=5").json()["rooms"]]

    assert lobby in listed(lobby) and secret not in listed(secret)

    page.locator("#composer").fill("more secret plans")
    page.locator("#composer").press("Enter")
    expect(page.locator("#messages li.msg .body")).to_have_text(["the secret plans", "more secret plans"])
    expect(spy.locator("body")).not_to_contain_text("secret plans")
    assert spy.request.get(f"/api/rooms/{secret}/messages").status == 403


def test_unread_counts_survive_a_reload_and_clear_once_the_room_is_read(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    here, there, reader, writer = unique("here"), unique("there"), unique("rudy"), unique("wanda")
    join = (
        "from chatcluster.services.memberships import room_join\n"
        f"room_join(slug={there!r}, user=User.objects.get_or_create(username={reader!r})[0])\n"
    )
    create_users(cluster, reader, writer, before=seed_code(there, [(writer, "old news", 30)]) + join)
    page = open_chat(browser, cluster, reader, pages_opened, path=f"/rooms/{here}/", port=cluster.node_port(0))
    item = page.locator(f'#room-list li[data-room="{there}"]')
    badge = item.locator(".unread")
    expect(item).to_have_count(1)
    # Joining is seeing the room as it is: what was written before is not news.
    expect(badge).to_be_hidden()

    other = open_chat(browser, cluster, writer, pages_opened, path=f"/rooms/{there}/", port=cluster.node_port(1))
    for body in ("first new", "second new"):
        other.locator("#composer").fill(body)
        other.locator("#composer").press("Enter")
    expect(badge).to_have_text("2")
    expect(item.locator(".room-extra")).to_have_text(" (2 unread)")
    expect(page).to_have_title(re.compile(r"^\(2\) "))

    page.reload()
    expect(badge).to_have_text("2")
    sent = reads_sent(page)
    item.locator("a").click()
    expect(page.locator("#new-marker + li.msg .body")).to_have_text("first new")
    expect(badge).to_be_hidden()
    wait_reads_sent(page, sent)

    page.goto(f"/rooms/{here}/")
    expect(item).to_have_count(1)
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(badge).to_be_hidden()
