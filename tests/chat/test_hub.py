"""The hub's own steps against a real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatcluster.conf import chat_settings, layer_connection
from chatcluster.hub import Hub
from tests.chaos import wait_for
from tests.redis_servers import RedisServer


async def test_renewing_the_channel_while_redis_is_frozen_fails_in_bounded_time_and_works_once_it_answers() -> None:
    # The sharding test's flake: Redis came back empty, and the watchdog's restore waited on
    # a reconnect to a Redis that accepted but did not answer yet, with no reply timeout.
    # Here that Redis is frozen (SIGSTOP) to make the window as long as needed.
    server = RedisServer().start()
    layer = RedisPubSubChannelLayer(hosts=[layer_connection(server.url)])
    received: list[dict[str, Any]] = []
    hub = Hub.__new__(Hub)
    hub.layer = layer

    async def receive_loop() -> None:
        while True:
            received.append(await layer.receive(hub.channel))

    hub._receive_loop = receive_loop  # type: ignore[method-assign]
    hub.channel = await layer.new_channel("node.")
    hub._receiver = asyncio.create_task(receive_loop())
    try:
        await layer.send(hub.channel, {"type": "before"})
        await wait_for(lambda: len(received) == 1, 5, "the first message")
        server.shutdown_nosave()
        server.start()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            # It cannot succeed while Redis is frozen, but it must give up by itself.
            async with asyncio.timeout(chat_settings.REDIS_SOCKET_TIMEOUT * 2 + 2):
                with pytest.raises(RedisTimeoutError):
                    await hub.renew_channel()
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        await hub.renew_channel()
        await layer.send(hub.channel, {"type": "after"})
        await wait_for(lambda: [m["type"] for m in received] == ["before", "after"], 10, "the message after")
    finally:
        hub._receiver.cancel()
        await asyncio.gather(hub._receiver, return_exceptions=True)
        await layer.flush()
        server.stop()
