"""docs/screenshot.png, the picture in the README: a real conversation on the real cluster.

It shows what people look for first: a DM with an unread message, an edited message,
reactions with their counts, and mentions (highlighted, and counted in the sidebar).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, seed_code
from tests.cluster import ROOT, RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

SCREENSHOT = ROOT / "docs" / "screenshot.png"
ROOMS = {"launch": "Launch planning", "general": "General", "design": "Design & product", "leads": "Team leads"}

LAUNCH = [
    ("bob", "Did anyone look at the flaky reconnect test yet?", 65),
    ("bob", "It fails about once in twenty runs on CI.", 64),
    ("alice", "Yes: a race between the ack and the replay after a reconnect. Fixed in the last merge.", 52),
    ("alice", "Pending messages now stay pending until the acked seq arrives, so the order no longer matters.", 51),
    ("dmitri", "Nice. I'll rerun the chaos suite tonight.", 41),
    ("carol", "Release checklist for Friday:\n1. freeze main at noon\n2. run the load test\n3. tag and deploy", 28),
]
UNREAD = [("bob", "@alice lunch at 12:30?", 20), ("dmitri", "Count me in.", 18), ("carol", "Me too.", 15)]
# Changes to the launch room's history, made through the same services as a socket's frames.
CHANGES = (
    "from chatcluster.services.changes import message_edit, message_react\n"
    "from chatcluster.services.dms import dm_open\n"
    "from chatcluster.services.messages import message_create\n"
    "people = {name: User.objects.get_or_create(username=name)[0] for name in ('bob', 'carol', 'dmitri')}\n"
    "message_edit(slug='launch', user=people['dmitri'], target=5, body=\"Nice. I'll rerun the chaos suite "
    'tonight, on all three nodes.")\n'
    "for who, emoji in (('bob', '🎉'), ('carol', '🎉'), ('dmitri', '🎉'), ('carol', '👍')):\n"
    "    message_react(slug='launch', user=people[who], target=3, emoji=emoji, on=True)\n"
    "message_react(slug='launch', user=people['bob'], target=6, emoji='👀', on=True)\n"
    "dm = dm_open(caller=people['bob'], usernames=['alice'])\n"
    "message_create(room=dm, author=people['bob'], body='Got a minute before the demo?')\n"
)
LIVE = [
    ("bob", "Load test numbers are in: p99 fan-out under 40 ms with three nodes."),
    ("carol", "@alice could you review the sidebar PR? Titles like <script>alert(1)</script> now show as text."),
    ("alice", "On it after lunch."),
]


def test_a_conversation_with_several_users_is_captured_for_the_readme(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    # alice belongs to the four rooms: her sidebar lists them and no other.
    rooms = (
        "from django.contrib.auth.models import User\n"
        "from chatcluster.models import Membership, Room\n"
        f"rooms = {ROOMS!r}\n"
        "alice = User.objects.get_or_create(username='alice')[0]\n"
        "for slug, title in rooms.items():\n"
        "    fields = {'title': title, 'is_private': slug == 'leads'}\n"
        "    room = Room.objects.update_or_create(slug=slug, defaults=fields)[0]\n"
        "    Membership.objects.get_or_create(room=room, user=alice)\n"
    )
    # alice has read general, design and leads up to here; what follows in general is unread.
    read = (
        "from chatcluster.services.reads import read_mark\n"
        "for room in Room.objects.filter(slug__in=['general', 'design', 'leads']):\n"
        "    read_mark(slug=room.slug, user=alice, seq=room.last_seq)\n"
    )
    create_users(
        cluster,
        "alice",
        "bob",
        "carol",
        "dmitri",
        before=rooms
        + seed_code("launch", LAUNCH)
        + seed_code("general", [("dmitri", "Coffee machine on floor 2 is fixed.", 200)])
        + seed_code("design", [("carol", "New icons are in the shared folder.", 300)])
        + read
        + seed_code("general", UNREAD)
        + CHANGES,
    )

    pages = {
        name: open_chat(browser, cluster, name, pages_opened, path="/rooms/launch/", port=cluster.node_port(i % 3))
        for i, name in enumerate(("alice", "bob", "carol", "dmitri"))
    }
    alice = pages["alice"]
    for page in pages.values():
        expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(alice.locator("#online .member-name")).to_have_text(["alice", "bob", "carol", "dmitri"], timeout=10_000)
    for who, body in LIVE:
        pages[who].locator("#composer").fill(body)
        pages[who].locator("#composer").press("Enter")
        expect(alice.locator("#messages li.msg .body").last).to_have_text(body)
    expect(alice.locator('#room-list li[data-room="general"] .unread')).to_have_text("3")
    expect(alice.locator(".reactions .chip")).to_have_count(3)

    pages["dmitri"].locator("#composer").press_sequentially("Sure, I")
    expect(alice.locator("#typing")).to_have_text("dmitri is typing…")
    alice.locator("#composer").blur()
    alice.screenshot(path=str(SCREENSHOT))
