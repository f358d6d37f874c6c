"""Print the live nodes of the cluster and their figures, from the registry in Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from django.core.management.base import BaseCommand

from chatcluster.services.nodes import NodeInfo, node_list


class Command(BaseCommand):
    help = "List the live nodes (heartbeat younger than PRESENCE_TTL) with their connections."

    def handle(self, *args: Any, **options: Any) -> None:
        nodes = asyncio.run(node_list())
        self.stdout.write(render_table(nodes, now=time.time()))


def render_table(nodes: list[NodeInfo], *, now: float) -> str:
    header = ("node", "address", "pid", "up", "connections", "subscriptions", "heartbeat")
    rows = [
        (
            n.node_id,
            n.address,
            str(n.pid),
            f"{now - n.started_at:.0f}s",
            str(n.connections),
            str(n.subscriptions),
            f"{now - n.heartbeat_at:.1f}s ago",
        )
        for n in nodes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.append(f"{len(nodes)} live node(s)")
    return "\n".join(lines)
