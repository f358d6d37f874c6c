"""The cluster-wide socket count per user, against the test Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

from django.test import override_settings

from chat.services.connections import connection_close, connection_heartbeat, connection_open


def user_id() -> int:
    return uuid.uuid4().int % 10**9


@override_settings(CHAT_MAX_SOCKETS_PER_USER=2)
async def test_a_user_gets_at_most_the_limit_and_a_closed_socket_frees_a_place() -> None:
    uid = user_id()
    assert await connection_open(user_id=uid, conn="n1/1")
    assert await connection_open(user_id=uid, conn="n2/1")
    assert not await connection_open(user_id=uid, conn="n3/1")
    # Re-opening a counted connection is not a new one.
    assert await connection_open(user_id=uid, conn="n1/1")
    await connection_close(user_id=uid, conn="n2/1")
    assert await connection_open(user_id=uid, conn="n3/1")


@override_settings(CHAT_MAX_SOCKETS_PER_USER=1, PRESENCE_TTL=0.2)
async def test_sockets_of_a_silent_node_stop_counting_after_the_ttl() -> None:
    uid = user_id()
    assert await connection_open(user_id=uid, conn="dead/1")
    assert not await connection_open(user_id=uid, conn="live/1")
    deadline = time.monotonic() + 2
    while not await connection_open(user_id=uid, conn="live/1"):
        assert time.monotonic() < deadline, "the silent node's socket still counts"
        await asyncio.sleep(0.05)


@override_settings(CHAT_MAX_SOCKETS_PER_USER=1)
async def test_a_heartbeat_restores_entries_redis_lost() -> None:
    uid = user_id()
    await connection_heartbeat(entries=[(uid, "n1/7")])
    assert not await connection_open(user_id=uid, conn="n2/1")
