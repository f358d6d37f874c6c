"""Start `manage.py runcluster` as a real process, the way `make run` does, for tests."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from django.conf import settings

from chatcluster.client import frames as wire
from chatcluster.cluster import Cluster, free_port
from chatcluster.conf import chat_settings

ROOT = Path(settings.BASE_DIR)


def _ports_free(first: int, count: int) -> bool:
    for port in range(first, first + count):
        with closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def pick_base_port(count: int) -> int:
    for _ in range(100):
        base = random.randrange(20000, 40000)
        if _ports_free(base, count + 1):
            return base
    raise RuntimeError("no free block of loopback ports")


def cluster_database_url(tmp: Path) -> str:
    """A database of the cluster's own, on the same engine as the test run."""
    default = settings.DATABASES["default"]
    if default["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{tmp / 'cluster.sqlite3'}"
    import psycopg

    name = f"chat_cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    password = f":{default['PASSWORD']}" if default.get("PASSWORD") else ""
    return f"postgres://{default['USER']}{password}@{default['HOST']}:{default['PORT'] or 5432}/{name}"


def admin_dsn() -> str:
    default = settings.DATABASES["default"]
    return f"host={default['HOST']} port={default['PORT'] or 5432} user={default['USER']} dbname=postgres"


def drop_cluster_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# The body of a long-lived `manage.py shell` that runs management commands and code sent
# to it, so that each of a test's set-up steps does not pay Django's start-up (2 s, some
# hundred times a run). Each request is a length-prefixed JSON list: ["call", args] or
# ["exec", code]; each answer a length-prefixed {"ok", "out", "err"}. Database
# connections close after every request, as they would with a process per request.
_CONSOLE = r"""
import contextlib, io, json, sys, traceback
from django.core.management import call_command
from django.db import connections

answers = sys.stdout
while header := sys.stdin.readline():
    kind, payload = json.loads(sys.stdin.read(int(header)))
    out, err, ok = io.StringIO(), io.StringIO(), True
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if kind == "exec":
                exec(compile(payload, "<shell>", "exec"), {"__name__": "__main__"})
            else:
                call_command(*payload, stdout=out, stderr=err)
    except BaseException:
        ok = False
        err.write(traceback.format_exc())
    finally:
        connections.close_all()
    answer = json.dumps({"ok": ok, "out": out.getvalue(), "err": err.getvalue()})
    answers.write(f"{len(answer)}\n{answer}")
    answers.flush()
"""


@dataclass
class RunningCluster:
    process: subprocess.Popen[str]
    cluster: Cluster
    env: dict[str, str]
    console: subprocess.Popen[str] | None = None

    @property
    def port(self) -> int:
        return self.cluster.port

    def node_port(self, index: int) -> int:
        return self.cluster.node_port(index)

    def log_tails(self, chars: int = 4000) -> str:
        """The end of every process log of the cluster: what a failed test report shows."""
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.cluster.run_dir.glob("*.log"))
        )

    def tokens(self, *users: str) -> list[str]:
        out = self.manage("chat_token", *users, "--create", "--ttl", "3600").split()
        assert len(out) == len(users)
        return out

    def shell(self, code: str) -> str:
        """Run Python as `manage.py shell` would, against the cluster's database and Redis."""
        return self._ask("exec", code, "shell")

    def manage(self, *args: str) -> str:
        """`manage.py` against the cluster's database and Redis; its stdout, or its stderr in the failure."""
        return self._ask("call", list(args), args[0])

    def _ask(self, kind: str, payload: object, name: str) -> str:
        if self.console is None or self.console.poll() is not None:
            self.console = subprocess.Popen(
                [sys.executable, "manage.py", "shell", "--no-imports", "-c", _CONSOLE],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.console.stdin is not None and self.console.stdout is not None
        request = json.dumps([kind, payload])
        self.console.stdin.write(f"{len(request)}\n{request}")
        self.console.stdin.flush()
        header = self.console.stdout.readline()
        assert header, f"manage.py {name}: the console died (exit {self.console.wait()})"
        answer = json.loads(self.console.stdout.read(int(header)))
        assert answer["ok"], f"manage.py {name} failed:\n{answer['err'][-3000:]}"
        return str(answer["out"])

    def login(self, username: str, password: str = "pw-for-tests-1") -> httpx.Client:
        """An HTTP client logged in through the balancer, creating the user if needed.

        An existing user keeps their password: changing it would end their other sessions.
        """
        self.shell(
            "from django.contrib.auth.models import User\n"
            f"if not User.objects.filter(username={username!r}).exists():\n"
            f"    User.objects.create_user({username!r}, password={password!r})\n"
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", follow_redirects=False)
        client.get("/accounts/login/")
        answer = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        )
        assert answer.status_code == 302, answer.text[:300]
        return client

    def kill_node(self, index: int, sig: int = signal.SIGKILL) -> int:
        pid = self.cluster.pid(self.cluster.node_ids()[index])
        os.kill(pid, sig)
        return pid

    def wait_node_ready(self, index: int, timeout: float = 30) -> None:
        wait_until(lambda: http_status(f"http://127.0.0.1:{self.node_port(index)}/readyz") == 200, timeout)

    @property
    def redis_url(self) -> str:
        return self.cluster.effective_redis_url

    def stop(self) -> None:
        if self.console is not None:
            self.console.kill()
            self.console.wait()
        # Ctrl-C, as `make run`'s user stops it: every node drains at once.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        drop_cluster_database(self.env["DATABASE_URL"])


def start_cluster(
    tmp: Path,
    *,
    nodes: int = 3,
    env: dict[str, str] | None = None,
    private_redis: bool = False,
    redis_url: str | None = None,
    balancer: str = "caddy",
) -> RunningCluster:
    """`runcluster` on free ports; with `private_redis` it runs a Redis of its own to break.

    `redis_url` (one URL or several, comma-separated) points the nodes at Redis servers
    the test runs itself.
    """
    redis_url = redis_url or ",".join(chat_settings.REDIS_URLS)
    base = pick_base_port(nodes)
    run_dir = tmp / "run"
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["DATABASE_URL"] = cluster_database_url(tmp)
    redis_port = free_port() if private_redis else 0
    if private_redis:
        full_env.pop("REDIS_URL", None)
    else:
        full_env["REDIS_URL"] = redis_url
    args = ["--nodes", str(nodes), "--port", str(base), "--run-dir", str(run_dir), "--redis-port", str(redis_port)]
    args += ["--balancer", balancer]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runcluster", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    cluster = Cluster(
        nodes=nodes,
        port=base,
        redis_url=None if private_redis else redis_url,
        run_dir=run_dir,
        redis_port=redis_port,
        balancer=balancer,
    )
    running = RunningCluster(process, cluster, full_env)
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    for line in process.stdout:
        if "Ctrl-C stops everything" in line:
            return running
        if time.monotonic() > deadline:
            break
    running.stop()
    logs = "\n".join(p.read_text()[-2000:] for p in run_dir.glob("*.log"))
    raise RuntimeError(f"runcluster did not come up (exit {process.poll()}):\n{logs}")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_until(condition: Any, timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Client:
    """A protocol client over a real socket that keeps every frame it reads, as a dict.

    A thin layer over `chatcluster.client.frames`: `send` writes exactly the fields it is
    given (a test may send what no typed frame allows), `send_frame` writes an encoded one.
    """

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open_with_cookies(cls, port: int, cookies: httpx.Cookies, **kwargs: Any) -> Client:
        header = "; ".join(f"{name}={value}" for name, value in cookies.items())
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/",
            additional_headers={"Origin": f"http://127.0.0.1:{port}", "Cookie": header},
            max_queue=None,
            **kwargs,
        )
        return cls(ws)

    async def closed(self, timeout: float = 10) -> int | None:
        """The close code the server ends this socket with (frames before it are kept)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.frames.append(await self._recv())
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    @classmethod
    async def open(cls, port: int, token: str, **kwargs: Any) -> Client:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/?token={token}",
            additional_headers={"Origin": f"http://127.0.0.1:{port}"},
            max_queue=None,
            **kwargs,
        )
        return cls(ws)

    async def send(self, **fields: Any) -> None:
        await self.send_frame(wire.encode_raw(fields))

    async def send_frame(self, data: bytes) -> None:
        """One frame from an encoder of `chatcluster.client.frames` (`wire`), as a text frame."""
        await self.ws.send(data, text=True)

    async def _recv(self) -> dict[str, Any]:
        return wire.decode_raw(await self.ws.recv())

    async def until(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        """The first frame, already read or arriving, that satisfies `predicate` (consumed)."""
        async with asyncio.timeout(timeout):
            while True:
                for i, frame in enumerate(self.frames):
                    if predicate(frame):
                        return self.frames.pop(i)
                self.frames.append(await self._recv())

    async def subscribe(self, room: str, since: int | None = None) -> dict[str, Any]:
        ref = f"sub-{room}"
        await self.send_frame(wire.encode_subscribe(room, since=since, ref=ref))
        return await self.until(lambda f: f["type"] in ("subscribed", "error") and f.get("ref") == ref)

    async def seqs(self, room: str, count: int, timeout: float = 20) -> list[int]:
        """Seqs of the next `count` messages of `room`, in arrival order."""
        out = []
        while len(out) < count:
            frame = await self.until(lambda f: f["type"] == "message" and f["room"] == room, timeout)
            out.append(frame["seq"])
        return out

    async def close(self) -> None:
        await self.ws.close()
