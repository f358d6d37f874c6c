"""nginx for the deploy tests: the machine's, installed with apt-get when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chatcluster.cluster import ClusterError, nginx_binary

# apt-get may have to download the package index first; a dead network fails well within this.
INSTALL_TIMEOUT = 300


def _apt_get(*args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(["apt-get", *args], env=env, capture_output=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _install_nginx() -> str | None:
    """Install nginx with apt-get; the reason it could not, or None."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    # The package index may be missing (fresh containers) or stale: update only on failure.
    if not _apt_get("install", "-y", "-q", "nginx") and not (
        _apt_get("update", "-q") and _apt_get("install", "-y", "-q", "nginx")
    ):
        return "`apt-get install -y nginx` failed (no network or no package)"
    return None


@pytest.fixture(scope="session")
def nginx() -> Path:
    """The nginx binary the cluster will run; skips, saying why, when it cannot be had."""
    try:
        return nginx_binary()
    except ClusterError:
        pass
    reason = _install_nginx()
    try:
        return nginx_binary()
    except ClusterError:
        pytest.skip(f"nginx is not installed and could not be: {reason or 'not found after installing'}")
