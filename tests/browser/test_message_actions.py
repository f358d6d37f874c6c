"""What people do to messages on the page, seen live on another user's page on another node:
typing right after a send, edit and delete, reactions, a ban, mentions (issue 16)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat, seed_code, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]


def room_code(room: str, owner: str, *members: str) -> str:
    """Code for create_users: `room`, public, owned by `owner`, with `members` joined."""
    return (
        "from django.contrib.auth.models import User\n"
        "from chatcluster.services.memberships import room_join\n"
        "from chatcluster.services.rooms import room_create\n"
        f"owner = User.objects.get_or_create(username={owner!r})[0]\n"
        f"room_create(slug={room!r}, title='', is_private=False, creator=owner)\n"
        f"for name in {list(members)!r}:\n"
        f"    room_join(slug={room!r}, user=User.objects.get_or_create(username=name)[0])\n"
    )


def two_pages(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any], room: str, ann: str, ben: str
) -> tuple[Any, Any]:
    """ann's page on node 1 and ben's on node 2, both online in `room`."""
    pages = [
        open_chat(browser, cluster, name, pages_opened, path=f"/rooms/{room}/", port=cluster.node_port(i))
        for i, name in enumerate((ann, ben))
    ]
    for page in pages:
        expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    return pages[0], pages[1]


def test_keys_typed_right_after_a_send_show_as_typing_on_the_other_page_within_a_second(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("type"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben, before=room_code(room, ann, ben))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, ben)
    composer = second.locator("#composer")
    composer.press_sequentially("hello")
    expect(first.locator("#typing")).to_have_text(f"{ben} is typing…")
    # Within the 3 s the page and the 2 s the server ration typing frames, and at once:
    # the message ends the typing line on the other page, the next keys must bring it back.
    composer.press("Enter")
    composer.press_sequentially("an")
    typed = time.monotonic()
    expect(first.locator("#messages li.msg .body")).to_have_text(["hello"])
    expect(first.locator("#typing")).to_have_text(f"{ben} is typing…", timeout=1_000)
    assert time.monotonic() - typed < 1.0


def test_an_edit_and_a_delete_show_live_on_a_page_on_another_node(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("edit"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben, before=room_code(room, ann, ben) + seed_code(room, [(ann, "see you at 3", 1)]))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, ben)
    mine, theirs = first.locator("#messages li.msg").first, second.locator("#messages li.msg").first
    expect(theirs.locator(".body")).to_have_text("see you at 3")
    # Only the author edits; ben, not a moderator, sees no Delete on ann's message either.
    expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Delete")).to_be_hidden()

    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    editor = mine.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    editor.fill("see you at 4")
    editor.press("Enter")
    expect(theirs.locator(".body")).to_have_text("see you at 4 (edited)")
    expect(theirs.locator(".edited")).to_have_attribute("title", re.compile(r"^Edited "))
    expect(mine.locator(".body")).to_have_text("see you at 4 (edited)")

    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    dialog = first.get_by_role("dialog", name="Delete this message?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    for row in (theirs, mine):
        expect(row.locator(".body")).to_have_text("Message deleted")
        expect(row.get_by_role("button", name="Add reaction")).to_have_count(0)
    for page in (first, second):
        expect(page.locator("#messages")).not_to_contain_text("see you")


def test_a_reaction_toggled_on_and_off_shows_on_the_other_page(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("react"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben, before=room_code(room, ann, ben) + seed_code(room, [(ann, "ship it?", 1)]))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, ben)
    row = second.locator("#messages li.msg").first
    row.hover()
    row.get_by_role("button", name="Add reaction").click()
    second.get_by_role("menuitem", name="React with 👍").click()
    chip, their_chip = row.locator(".chip"), first.locator("#messages li.msg .chip")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(their_chip).to_have_text("👍1")
    expect(their_chip).to_have_attribute("aria-pressed", "false")
    expect(their_chip).to_have_attribute("aria-label", f"👍 1: {ben}")
    expect(their_chip).to_have_attribute("title", ben)

    their_chip.click()  # ann adds hers through the chip
    expect(chip).to_have_attribute("aria-label", f"👍 2: {ben}, {ann}")
    expect(their_chip).to_have_attribute("aria-pressed", "true")

    chip.click()  # and ben takes his back
    expect(their_chip).to_have_attribute("aria-label", f"👍 1: {ann}")
    expect(chip).to_have_attribute("aria-pressed", "false")
    their_chip.click()
    expect(row.locator(".chip")).to_have_count(0)
    expect(first.locator("#messages li.msg .reactions")).to_be_hidden()


def test_a_ban_from_the_moderators_page_evicts_the_banned_users_open_page(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("ban"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben, before=room_code(room, ann, ben))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, ben)
    # ben is no moderator: no menu for him; ann owns the room: one per other user.
    expect(second.locator("#online .member-name")).to_have_text(sorted([ann, ben]), timeout=10_000)
    expect(second.get_by_role("button", name=f"Moderate {ann}")).to_have_count(0)
    first.locator(f'#online li[data-user="{ben}"]').hover()  # its tools show on hover or focus
    first.get_by_role("button", name=f"Moderate {ben}").click()
    first.get_by_role("menuitem", name="Ban").click()
    first.get_by_role("dialog", name=f"Ban {ben} from #{room}?").get_by_role("button", name="Ban").click()
    expect(first.locator("#toast")).to_have_text(f"{ben} is banned from #{room}.")

    expect(second.locator("#room-empty")).to_be_visible()
    expect(second.locator("#room-empty h2")).to_have_text(re.compile(rf"^You (are banned|were removed) from #{room}$"))
    expect(second.locator("#composer")).to_be_disabled()
    expect(second.locator("#messages li.msg")).to_have_count(0)
    expect(first.locator("#online .member-name")).to_have_text([ann], timeout=10_000)


def test_a_moderator_unbans_from_the_banned_list_and_the_user_posts_in_the_room_again(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, ben = unique("unban"), unique("ann"), unique("ben")
    create_users(cluster, ann, ben, before=room_code(room, ann, ben))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, ben)
    banned = first.locator("#banned .member-name")
    expect(first.locator("#online .member-name")).to_have_text(sorted([ann, ben]), timeout=10_000)
    expect(first.get_by_role("heading", name=re.compile(r"^Banned"))).to_be_hidden()  # nobody banned yet
    first.locator(f'#online li[data-user="{ben}"]').hover()
    first.get_by_role("button", name=f"Moderate {ben}").click()
    # ben is not muted: the menu offers Mute, not Unmute.
    expect(first.get_by_role("menu", name=f"Moderate {ben}").get_by_role("menuitem")).to_have_text(
        ["Kick", "Ban", "Mute"]
    )
    first.get_by_role("menuitem", name="Ban").click()
    first.get_by_role("dialog", name=f"Ban {ben} from #{room}?").get_by_role("button", name="Ban").click()
    expect(first.locator("#toast")).to_have_text(f"{ben} is banned from #{room}.")
    expect(second.locator("#room-empty h2")).to_have_text(re.compile(rf"^You (are banned|were removed) from #{room}$"))
    expect(first.get_by_role("heading", name="Banned — 1")).to_be_visible()
    expect(banned).to_have_text([ben])

    first.get_by_role("button", name=f"Unban {ben}").click()
    expect(first.locator("#toast")).to_have_text(f"{ben} is no longer banned from #{room}.")
    expect(banned).to_have_count(0)
    expect(first.get_by_role("heading", name=re.compile(r"^Banned"))).to_be_hidden()

    # ben's page opens the room again, and what he writes reaches ann's page.
    second.reload()
    expect(second.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(second.locator("#room-empty")).to_be_hidden()
    composer = second.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_enabled()
    composer.fill("back again")
    composer.press("Enter")
    expect(first.locator("#messages li.msg .body")).to_have_text(["back again"])
    expect(first.locator("#online .member-name")).to_have_text(sorted([ann, ben]), timeout=10_000)


def test_a_mention_is_highlighted_and_the_autocomplete_inserts_a_members_name(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room, ann, base = unique("at"), unique("ann"), unique("bo")
    bob, bobby = f"{base}b", f"{base}by"
    create_users(cluster, ann, bob, before=room_code(room, ann, bob, bobby))
    first, second = two_pages(browser, cluster, pages_opened, room, ann, bob)
    composer = first.get_by_role("textbox", name="Message", exact=True)
    composer.press_sequentially(f"thanks @{base}")
    options = first.get_by_role("listbox", name="Members to mention").get_by_role("option")
    expect(options).to_have_text([bob, bobby])
    expect(composer).to_have_attribute("aria-expanded", "true")
    composer.press("ArrowDown")
    composer.press("ArrowUp")
    expect(options.first).to_have_attribute("aria-selected", "true")
    composer.press("Tab")
    expect(composer).to_have_value(f"thanks @{bob} ")
    expect(options).to_have_count(0)
    composer.press_sequentially("and @nobody-here")
    composer.press("Enter")

    mine = first.locator("#messages li.msg .body")
    expect(mine).to_have_text(f"thanks @{bob} and @nobody-here")
    expect(mine.locator(".mention")).to_have_text([f"@{bob}", "@nobody-here"])
    expect(mine.locator(".mention.me")).to_have_count(0)
    theirs = second.locator("#messages li.msg")
    expect(theirs.locator(".mention.me")).to_have_text(f"@{bob}")
    expect(theirs).to_have_class(re.compile(r"\bmentions-me\b"))
