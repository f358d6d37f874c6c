"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, against the test cluster.

`make setup` installs Chromium from Debian's packages when it is missing; where it cannot
be installed these tests skip with a message. `playwright install` is never used.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import ROOT, RunningCluster

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = ROOT / "test-output"


# Module scope: Playwright's sync API runs its own event loop in this thread while it is
# open, which the asyncio tests of the next module could not share.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make setup tries it) to run these")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: run `make setup`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        OUTPUT.mkdir(exist_ok=True)
        for index, page in enumerate(item.funcargs.get("pages_opened", [])):  # type: ignore[attr-defined]
            try:
                page.screenshot(path=str(OUTPUT / f"{item.name}-{index}.png"), full_page=True)
            except Exception:
                pass
    return report


@pytest.fixture
def pages_opened() -> Iterator[list[Any]]:
    """Pages a test opened; each is saved as a screenshot under test-output/ if it fails.

    Their contexts close after the test, so their sockets do not linger in the shared
    cluster (presence, the per-user socket cap) for the tests after it.
    """
    pages: list[Any] = []
    yield pages
    for page in pages:
        try:
            page.context.close()
        except Exception:
            pass  # already closed by the test, or the browser is gone


def new_page(browser: Any, pages_opened: list[Any], port: int, viewport: dict[str, int] | None = None) -> Any:
    """A fresh browser context (no cookies) with one page on `port`, recording console errors."""
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{port}", viewport=viewport or {"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    pages_opened.append(page)
    return page


def open_chat(
    browser: Any,
    cluster: RunningCluster,
    username: str,
    pages_opened: list[Any],
    path: str = "/",
    port: int = 0,
    viewport: dict[str, int] | None = None,
    fake_clock: bool = False,
) -> Any:
    """A page of the chat, logged in as `username` (created if needed), at `path`.

    `port` pins the page to one node (its own port) instead of the balancer. With
    `fake_clock` the page's timers run on Playwright's clock (page.clock.fast_forward).
    """
    if username not in _sessions:
        create_users(cluster, username)
    page = new_page(browser, pages_opened, port or cluster.port, viewport)
    page.context.add_cookies([{"name": "sessionid", "value": _sessions[username], "domain": "127.0.0.1", "path": "/"}])
    if fake_clock:
        page.clock.install()  # before the page's scripts start their intervals
    page.goto(path)
    return page


_sessions: dict[str, str] = {}


def create_users(cluster: RunningCluster, *usernames: str, before: str = "") -> list[str]:
    """Create users with a logged-in session each, in one `manage.py shell` run.

    Much faster than a login per user (no password hashing, no extra process); open_chat
    then only sets the session cookie. `before` is more code for the same run (seed_code):
    each run costs a Django start-up, the slowest part of these tests' setup. Returns
    what `before` printed, line by line.
    """
    out = cluster.shell(
        before + "from django.contrib.auth.models import User\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"for name in {list(usernames)!r}:\n"
        "    user = User.objects.filter(username=name).first()\n"
        "    if user is None:\n"
        "        user = User(username=name)\n"
        "        user.set_unusable_password()\n"
        "        user.save()\n"
        "    session = SessionStore()\n"
        "    session['_auth_user_id'] = str(user.pk)\n"
        "    session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    session['_auth_user_hash'] = user.get_session_auth_hash()\n"
        "    session.create()\n"
        "    print('session', name, session.session_key)\n"
    )
    printed = []
    for line in out.splitlines():
        if line.startswith("session "):
            _, name, key = line.split()
            _sessions[name] = key
        else:
            printed.append(line)
    return printed


def seed_code(room: str, messages: list[tuple[str, str, float]]) -> str:
    """Code that stores (user, body, minutes ago) messages in `room` in the cluster's database.

    For history that exists before a page opens; live messages go through the pages.
    """
    return (
        "from datetime import timedelta\n"
        "from django.contrib.auth.models import User\n"
        "from django.utils import timezone\n"
        "from chatcluster.models import Message\n"
        "from chatcluster.services.messages import message_publish\n"
        f"for user, body, ago in {messages!r}:\n"
        "    author = User.objects.get_or_create(username=user)[0]\n"
        "    posted = message_publish(slug=" + repr(room) + ", author=author, body=body)\n"
        "    Message.objects.filter(room__slug=" + repr(room) + ", seq=posted.seq)"
        ".update(created_at=timezone.now() - timedelta(minutes=ago))\n"
    )


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against the same cluster) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
