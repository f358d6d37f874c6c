"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, against the test cluster.

`make setup` installs Chromium from Debian's packages when it is missing; where it cannot
be installed these tests skip with a message. `playwright install` is never used.
"""

from __future__ import annotations

import os
import shutil
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
def pages_opened() -> list[Any]:
    """Pages a test opened; each is saved as a screenshot under test-output/ if it fails."""
    return []


def open_chat(
    browser: Any, cluster: RunningCluster, username: str, pages_opened: list[Any], path: str = "/", port: int = 0
) -> Any:
    """A page of the chat, logged in as `username` (created if needed), at `path`."""
    http = cluster.login(username)
    target = port or cluster.port
    context = browser.new_context(base_url=f"http://127.0.0.1:{target}")
    context.add_cookies(
        [
            {"name": name, "value": value, "domain": "127.0.0.1", "path": "/"}
            for name, value in http.cookies.items()
            if name in ("sessionid", "csrftoken")
        ]
    )
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    pages_opened.append(page)
    page.goto(path)
    return page
