"""Message bodies are always text in the real page: an XSS payload shows, and runs nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_users, open_chat
from tests.cluster import RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>window.__pwned = 1</script>",
    '"><svg onload=alert(2)>',
    "[link](javascript:alert(3)) <a href=javascript:alert(4)>x</a>",
]


def test_html_in_a_message_is_shown_as_text_and_never_runs(
    browser: Any, cluster: RunningCluster, pages_opened: list[Any]
) -> None:
    room = "xss-" + uuid.uuid4().hex[:8]
    (key,) = create_users(
        cluster,
        "xss-reader",
        before="from django.contrib.auth.models import User\n"
        "from chatcluster.services.apikeys import apikey_create\n"
        "writer = User.objects.get_or_create(username='xss-writer')[0]\n"
        "print(apikey_create(name='xss', user=writer)[1])\n",
    )
    page = open_chat(browser, cluster, "xss-reader", pages_opened, path=f"/rooms/{room}/")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect(page.locator("#banner")).to_have_attribute("data-state", "online", timeout=15_000)
    http = httpx.Client(base_url=f"http://127.0.0.1:{cluster.port}")
    for body in PAYLOADS:
        answer = http.post(
            f"/api/rooms/{room}/messages", json={"body": body}, headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 201, answer.text
    bodies = page.locator("#messages li.msg .body")
    expect(bodies).to_have_count(len(PAYLOADS), timeout=10_000)
    assert bodies.all_inner_texts() == PAYLOADS
    # Nothing was parsed as markup: no element but the text nodes inside each body (the
    # message toolbars' own icons are the only SVG in the list).
    parsed = "#messages img, #messages script, #messages svg:not(.msg-actions svg), #messages a[href^='javascript']"
    assert page.locator(parsed).count() == 0
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    # The page itself runs under the CSP (no inline script) without tripping it.
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
