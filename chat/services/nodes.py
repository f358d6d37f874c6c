"""The node registry: every live node, its address and figures, in Redis with expiry.

The registry is a few hundred bytes per node and is rewritten on every heartbeat, so it
lives on shard 0 alone rather than spread: when shard 0 restarts empty the nodes are
missing from it until their next heartbeat (at most PRESENCE_TTL / 3), or at once when
the hub's watchdog restores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatcluster.conf import chat_settings
from chatcluster.redis import all_redis, get_redis

NODES_KEY = "chat:nodes"


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    pid: int
    started_at: float
    connections: int
    subscriptions: int
    heartbeat_at: float


def _ttl() -> float:
    # A node that missed three heartbeats is gone, the same rule as for presence.
    return float(chat_settings.PRESENCE_TTL)


async def node_heartbeat(*, info: NodeInfo) -> None:
    key = f"{NODES_KEY}:{info.node_id}"
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "address": info.address,
                "pid": info.pid,
                "started_at": info.started_at,
                "connections": info.connections,
                "subscriptions": info.subscriptions,
                "heartbeat_at": info.heartbeat_at,
            },
        )
        pipe.pexpire(key, int(_ttl() * 1000))
        pipe.zadd(NODES_KEY, {info.node_id: info.heartbeat_at + _ttl()})
        pipe.zremrangebyscore(NODES_KEY, "-inf", time.time())
        await pipe.execute()


async def node_forget(*, node_id: str) -> None:
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.delete(f"{NODES_KEY}:{node_id}")
        pipe.zrem(NODES_KEY, node_id)
        await pipe.execute()


async def node_list() -> list[NodeInfo]:
    """The nodes whose last heartbeat is younger than the TTL, by id."""
    client = get_redis()
    ids = await client.zrangebyscore(NODES_KEY, time.time(), "+inf")
    nodes = []
    for node_id in sorted(str(i) for i in ids):
        raw = {str(k): str(v) for k, v in (await client.hgetall(f"{NODES_KEY}:{node_id}")).items()}
        if raw:
            nodes.append(
                NodeInfo(
                    node_id=node_id,
                    address=raw["address"],
                    pid=int(raw["pid"]),
                    started_at=float(raw["started_at"]),
                    connections=int(raw["connections"]),
                    subscriptions=int(raw["subscriptions"]),
                    heartbeat_at=float(raw["heartbeat_at"]),
                )
            )
    return nodes


async def node_room_presence() -> dict[str, list[str]]:
    """Online users per room, across the cluster and every shard (for the operator's view)."""
    rooms: dict[str, list[str]] = {}
    for client in all_redis():
        async for key in client.scan_iter(match="chat:online:*", count=1000):
            room = key.removeprefix("chat:online:")
            if "\n" in room:
                continue
            users = await client.smembers(key)
            if users:
                rooms[room] = sorted(str(user) for user in users)
    return dict(sorted(rooms.items()))


async def node_redis_figures() -> dict[str, object]:
    """Redis pub/sub and load figures from PUBSUB and INFO, summed over the shards."""
    channels: list[str] = []
    numsub: list[tuple[str, int]] = []
    infos: list[dict[str, object]] = []
    for client in all_redis():
        names = [str(c) for c in await client.pubsub_channels()]
        channels += names
        numsub += [(str(c), int(n)) for c, n in (await client.pubsub_numsub(*names[:200]) if names else [])]
        infos.append(await client.info())

    def each(field: str) -> str:
        return ", ".join(str(info.get(field)) for info in infos)

    return {
        "shards": len(infos),
        "pubsub_channels": len(channels),
        "pubsub_subscribers": sum(count for _, count in numsub),
        "top_channels": sorted(numsub, key=lambda pair: -pair[1])[:20],
        "connected_clients": sum(int(str(info.get("connected_clients", 0))) for info in infos),
        "used_memory_human": each("used_memory_human"),
        "instantaneous_ops_per_sec": sum(int(str(info.get("instantaneous_ops_per_sec", 0))) for info in infos),
        "redis_version": each("redis_version"),
        "uptime_in_seconds": each("uptime_in_seconds"),
    }
