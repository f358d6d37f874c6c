"""Signing up, creating a room, and reaching it by its link, logged in or not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import new_page, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

PASSWORD = "a-long-Passphrase-42"


def sign_up(page: Any, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()


def test_sign_up_create_a_room_and_others_reach_it_by_deep_link_through_sign_in(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    owner, guest, room = unique("owner"), unique("guest"), unique("plan")
    page = new_page(browser, pages_opened, cluster.node_port(0))
    page.goto("/accounts/signup/")
    sign_up(page, owner)
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(page.get_by_test_id("current-user")).to_contain_text(owner)

    page.locator("#new-room-slug").fill(room)
    page.locator("#new-room-title").fill("Planning")
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(f"/rooms/{room}/$"))
    expect(page.locator("#room-title")).to_have_text("Planning")
    page.locator("#composer").fill("welcome aboard")
    page.locator("#composer").press("Enter")
    expect(page.locator("#messages li.msg .body")).to_have_text(["welcome aboard"])

    # A logged-out visitor on another node follows the link: sign-in page, then a new
    # account from there, and straight back to the room.
    other = new_page(browser, pages_opened, cluster.node_port(1))
    other.goto(f"/rooms/{room}/")
    expect(other).to_have_url(re.compile(r"/accounts/login/\?next=/rooms/" + room))
    other.get_by_role("link", name="Create an account").click()
    sign_up(other, guest)
    expect(other).to_have_url(re.compile(f"/rooms/{room}/$"))
    expect(other.locator("#messages li.msg .body")).to_have_text(["welcome aboard"])
    # A link previews the room; joined, it has its title and its place in the sidebar.
    other.get_by_role("button", name="Join room").click()
    expect(other.locator("#room-title")).to_have_text("Planning")
    # The deep link survives a reload, and the room is in the sidebar as the current one.
    other.reload()
    expect(other.locator("#messages li.msg .body")).to_have_text(["welcome aboard"])
    expect(other.locator(f'#room-list li[data-room="{room}"] a')).to_have_attribute("aria-current", "page")

    # The owner logs out, follows the link, signs in, and lands in the room again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile("/accounts/login/"))
    page.goto(f"/rooms/{room}/")
    page.get_by_label("Username").fill(owner)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(f"/rooms/{room}/$"))
    expect(page.locator("#messages li.msg .body")).to_have_text(["welcome aboard"])
