"""The page on a phone, and the keyboard and screen-reader basics."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OUTPUT, open_chat, unique
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

PHONE = {"width": 375, "height": 667}


def test_on_a_phone_the_sidebar_collapses_behind_a_toggle(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    first, second = unique("tiny"), unique("small")
    page = open_chat(browser, cluster, unique("phil"), pages_opened, path=f"/rooms/{second}/", viewport=PHONE)
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    page.get_by_role("button", name="Join room").click()
    expect(page.get_by_role("button", name="Leave")).to_be_visible()
    page.goto(f"/rooms/{first}/")
    toggle = page.get_by_role("button", name="Rooms", exact=True)
    sidebar = page.get_by_role("navigation", name="Rooms")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(sidebar).to_be_hidden()
    expect(page.locator("#composer")).to_be_in_viewport()
    expect(page.locator("#presence-panel")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    sidebar.locator(f'li[data-room="{second}"] a').click()
    expect(page).to_have_url(re.compile(f"/rooms/{second}/$"))
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    page.locator("#composer").fill("sent from a phone")
    page.locator("#composer").press("Enter")
    expect(page.locator("#messages li.msg .body").last).to_have_text("sent from a phone")
    expect(page.locator("#messages li.msg .body").last).to_be_in_viewport()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "phone.png"))  # to look at, not compared

    # The online list is one tap away, and Escape closes it again.
    page.locator("#members-toggle").click()
    expect(page.locator("#presence-panel")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#presence-panel")).to_be_hidden()


def test_the_page_has_labels_landmarks_a_live_region_a_sensible_focus_order_and_enter_sends(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    page = open_chat(browser, cluster, unique("kay"), pages_opened, path=f"/rooms/{unique('keys')}/")
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    expect(page.get_by_role("status").filter(has_text="Online")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Rooms")).to_be_visible()
    expect(page.get_by_role("main")).to_be_visible()
    expect(page.get_by_role("list", name="Messages", exact=True)).to_have_attribute("aria-live", "polite")
    expect(page.get_by_label("Message", exact=True)).to_be_visible()
    expect(page.get_by_label("Join a room by name")).to_be_attached()
    expect(page.get_by_role("button", name="Send")).to_be_visible()

    # The first Tab stop skips straight to the message box.
    page.locator("body").focus()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to message box")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    # Shift+Enter adds a line, Enter sends.
    page.keyboard.type("typed from")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("the keyboard")
    expect(page.locator("#messages li.msg")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.locator("#messages li.msg .body")).to_have_text(["typed from\nthe keyboard"])
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
