"""The sidebar of rooms you belong to: landing, the room directory, DMs, mentions, search."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, seed_code, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]


def join_code(user: str, *slugs: str) -> str:
    """Code that makes `user` a member of `slugs` (created if missing), as the join button does."""
    return (
        "from django.contrib.auth.models import User\n"
        "from chatcluster.services.memberships import room_join\n"
        f"member = User.objects.get_or_create(username={user!r})[0]\n"
        f"for slug in {list(slugs)!r}:\n"
        "    room_join(slug=slug, user=member)\n"
    )


def test_a_new_user_lands_on_the_default_room_and_joins_one_of_300_from_the_directory(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    hall, user = unique("hall"), unique("nina")
    create_users(
        cluster,
        user,
        before="from chatcluster.models import Room\n"
        f"Room.objects.bulk_create([Room(slug=f'{hall}-{{i:03}}', title=f'Hall {{i}}') for i in range(300)])\n",
    )
    page = open_chat(browser, cluster, user, pages_opened)
    expect(page).to_have_url(re.compile("/rooms/general/$"))
    expect(page.locator("#room-list li")).to_have_count(1)
    expect(page.locator('#room-list li[data-room="general"] a')).to_have_attribute("aria-current", "page")

    # Every frame the page sends from here on: the socket must follow no room it was not shown.
    sent: list[dict[str, Any]] = []
    sockets: list[Any] = []

    def watch(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", watch)
    page.reload()  # a second visit lands on the room used last
    expect(page).to_have_url(re.compile("/rooms/general/$"))
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)

    page.get_by_role("button", name="Browse rooms").click()
    directory = page.get_by_role("dialog", name="Browse rooms")
    rows = directory.locator("button.dir-room")
    expect(rows).to_have_count(50)
    directory.get_by_role("button", name="More", exact=True).click()
    expect(rows).to_have_count(100)
    directory.get_by_role("searchbox", name="Search rooms").fill(f"{hall}-12")
    expect(rows).to_have_count(10)  # -120 to -129
    rows.filter(has_text="Hall 123").click()
    expect(directory).to_be_hidden()
    expect(page).to_have_url(re.compile(f"/rooms/{hall}-123/$"))
    expect(page.locator("#room-title")).to_have_text("Hall 123")
    expect(page.locator(f'#room-list li[data-room="{hall}-123"]')).to_have_count(0)  # a preview only

    page.get_by_role("button", name="Join room").click()
    expect(page.locator("#room-list li")).to_have_count(2)
    expect(page.locator(f'#room-list li[data-room="{hall}-123"] a')).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("button", name="Join room")).to_be_hidden()
    page.locator("#composer").fill("hello from the hall")
    page.locator("#composer").press("Enter")
    expect(page.locator("#messages li.msg .body")).to_have_text(["hello from the hall"])

    # A preview is followed only while it is on screen.
    page.get_by_role("button", name="Browse rooms").click()
    directory.get_by_role("searchbox", name="Search rooms").fill(f"{hall}-124")
    expect(rows).to_have_count(1)
    rows.click()
    expect(page.locator("#room-title")).to_have_text("Hall 124")
    with sockets[-1].expect_event(
        "framesent", lambda payload: json.loads(payload) == {"type": "unsubscribe", "room": f"{hall}-124"}
    ):
        page.locator('#room-list li[data-room="general"] a').click()

    followed = {frame["room"] for frame in sent if frame["type"] == "subscribe"}
    assert followed == {"general", f"{hall}-123", f"{hall}-124"}
    expect(page.locator("#room-list li")).to_have_count(2)
    expect(page.locator("#toast")).to_be_hidden()
    assert page.console_errors == []


def test_a_dm_started_from_the_online_list_reaches_the_other_persons_sidebar(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("lobby"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben)
    first = open_chat(browser, cluster, ann, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(0))
    second = open_chat(
        browser, cluster, ben, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(1), fake_clock=True
    )
    expect(first.locator("#online .member-name")).to_have_text(sorted([ann, ben]), timeout=10_000)
    expect(first.get_by_role("button", name=f"Message {ann}")).to_have_count(0)  # not yourself

    first.get_by_role("button", name=f"Message {ben}").click()
    expect(first.locator("#dm-list .room-name")).to_have_text([ben])
    expect(first.locator("#dm-list a")).to_have_attribute("aria-current", "page")
    expect(first.get_by_role("heading", level=1)).to_have_accessible_name(ben)

    # Nothing on ben's socket announces the new DM: his page finds it at its next look at his rooms.
    second.clock.fast_forward("00:31")
    expect(second.locator("#dm-list .room-name")).to_have_text([ann])
    first.locator("#composer").fill("psst, a word?")
    first.locator("#composer").press("Enter")
    expect(second.locator("#dm-list .unread")).to_have_text("1")
    second.locator("#dm-list a").click()
    expect(second.locator("#messages li.msg .body")).to_have_text(["psst, a word?"])
    expect(second.get_by_role("heading", level=1)).to_have_accessible_name(ann)


def test_a_mention_badge_survives_a_reload_and_clears_once_the_room_is_read(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, lobby, reader, writer = unique("news"), unique("desk"), unique("mia"), unique("walt")
    create_users(
        cluster,
        reader,
        writer,
        before=join_code(reader, room) + seed_code(room, [(writer, f"@{reader} have a look", 1)]),
    )
    page = open_chat(browser, cluster, reader, pages_opened, path=f"/rooms/{lobby}/", port=cluster.node_port(0))
    item = page.locator(f'#room-list li[data-room="{room}"]')
    expect(item.get_by_role("img", name="1 mention", exact=True)).to_have_text("@1")
    expect(item.locator(".unread")).to_have_text("1")

    other = open_chat(browser, cluster, writer, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(1))
    other.locator("#composer").fill(f"and again, @{reader}.")
    other.locator("#composer").press("Enter")
    expect(item.get_by_role("img", name="2 mentions")).to_have_text("@2")
    other.locator("#composer").fill("no mention here")
    other.locator("#composer").press("Enter")
    expect(item.locator(".unread")).to_have_text("3")

    page.reload()
    expect(item.get_by_role("img", name="2 mentions")).to_have_text("@2")
    expect(item.locator(".unread")).to_have_text("3")
    with page.expect_response(lambda r: r.url.endswith(f"/api/rooms/{room}/read") and r.ok):
        item.locator("a").click()
    expect(page.locator("#messages li.msg .body")).to_have_text(
        [f"@{reader} have a look", f"and again, @{reader}.", "no mention here"]
    )
    expect(item.locator(".mention-badge")).to_be_hidden()

    page.goto(f"/rooms/{lobby}/")
    expect(item).to_have_count(1)
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(item.locator(".mention-badge")).to_be_hidden()
    expect(item.locator(".unread")).to_be_hidden()


def test_a_search_result_opens_its_message_in_context(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, desk, user, author = unique("archive"), unique("desk"), unique("sam"), unique("ola")
    word = unique("zebra").replace("-", "")
    notes = [(author, f"note {i}", 90 - i) for i in range(80)]
    notes[20] = (author, f"the {word} went this way", 70)
    create_users(cluster, user, before=seed_code(room, notes))
    page = open_chat(browser, cluster, user, pages_opened, path=f"/rooms/{desk}/")
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)

    page.get_by_role("button", name="Search messages").click()
    search = page.get_by_role("dialog", name="Search messages")
    search.get_by_label("Words to find").fill(word)
    hit = search.locator("button.search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".search-room")).to_have_text(f"#{room}")
    expect(hit.locator(".search-user")).to_have_text(author)
    expect(hit.locator("mark")).to_have_text(word)
    hit.click()

    expect(page).to_have_url(re.compile(f"/rooms/{room}/$"))
    found = page.locator("#messages li.msg", has_text=word)
    expect(found).to_have_class(re.compile(r"\bfound\b"))
    expect(found).to_be_in_viewport()
    bodies = page.locator("#messages li.msg .body")
    # The history around it (seq 21 of 80): from the first message, not the newest page.
    expect(bodies.first).to_have_text("note 0")
    expect(bodies.filter(has_text="note 79")).to_have_count(0)

    page.get_by_role("button", name="Jump to latest").click()
    expect(bodies.last).to_have_text("note 79")
    expect(found).to_have_count(0)
