"""The bare asyncio reference for bench/perf.py: about as little as a chat node can do.

picows + uvloop + redis.asyncio pub/sub. A socket opens `/ws/<room>/`; every text frame
it sends (`{"body", "ref"?}`) is encoded once as a `message` frame and published on the
Redis channel of its room; each process subscribes to a room's channel when its first
local socket joins and writes the bytes it receives to every local socket of the room.
The sender gets `{"type": "ack", "ref"}` once Redis has taken the publish. No auth, no
storage, no ordering, no backpressure: the floor the real server is compared with.

Run: python bench/bare_server.py --port P --redis-url redis://127.0.0.1:R/0
"""

from __future__ import annotations

import argparse
import asyncio

import msgspec
import redis.asyncio as redis
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

TEXT = WSMsgType.TEXT


class Hub:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.rooms: dict[bytes, set[Socket]] = {}
        # Publishes wait here so one pipeline carries all that arrived in a loop turn.
        self.pending: list[tuple[bytes, bytes, Socket, str | None]] = []
        self.wake = asyncio.Event()

    def join(self, sock: Socket) -> None:
        members = self.rooms.setdefault(sock.channel, set())
        if not members:
            asyncio.get_running_loop().create_task(self.pubsub.subscribe(sock.channel))
        members.add(sock)

    def leave(self, sock: Socket) -> None:
        self.rooms.get(sock.channel, set()).discard(sock)

    def publish(self, sock: Socket, payload: bytes) -> None:
        frame = msgspec.json.decode(payload)
        data = msgspec.json.encode({"type": "message", "room": sock.room, "body": frame.get("body", "")})
        self.pending.append((sock.channel, data, sock, frame.get("ref")))
        self.wake.set()

    async def publisher(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            pipe = self.client.pipeline(transaction=False)
            for channel, data, _, _ in batch:
                pipe.publish(channel, data)
            await pipe.execute()
            for _, _, sock, ref in batch:
                if ref is not None and not sock.transport.is_disconnected:
                    sock.transport.send(TEXT, msgspec.json.encode({"type": "ack", "ref": ref}))

    async def fan_out(self) -> None:
        # listen() ends at once without a subscription, so hold one from the start.
        await self.pubsub.subscribe("bare:hello")
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            data = message["data"]
            for sock in self.rooms.get(message["channel"], ()):
                sock.transport.send(TEXT, data)


class Socket(WSListener):
    def __init__(self, hub: Hub, room: str) -> None:
        self.hub = hub
        self.room = room
        self.channel = f"bare:{room}".encode()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.hub.join(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == TEXT:
            self.hub.publish(self, frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.hub.leave(self)


async def serve(port: int, redis_url: str) -> None:
    hub = Hub(redis.Redis.from_url(redis_url))

    def route(request: WSUpgradeRequest) -> Socket | None:
        parts = request.path.decode().strip("/").split("/")
        if len(parts) != 2 or parts[0] != "ws" or not parts[1]:
            return None
        return Socket(hub, parts[1])

    server = await ws_create_server(route, "127.0.0.1", port)
    tasks = [asyncio.create_task(hub.publisher()), asyncio.create_task(hub.fan_out())]
    async with server:
        await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.redis_url))


if __name__ == "__main__":
    main()
