"""Slowloris clients for the header-timeout tests: connections that trickle a request head.

Each opens a TCP connection to a loopback port, sends the start of a request head and then
one more byte every `TRICKLE` seconds, never the blank line that ends it. Each byte resets an
idle timeout, so only a deadline for the whole head closes such a connection.
"""

from __future__ import annotations

import asyncio
import math

# Seconds between two trickled bytes: well inside any idle timeout.
TRICKLE = 0.5
START = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def _one(port: int, give_up: float) -> float:
    """Seconds from connecting until the server closed; `inf` if it had not after `give_up` s."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = loop.time()
    deadline = opened + give_up
    try:
        writer.write(START)
        while loop.time() < deadline:
            try:
                async with asyncio.timeout(min(TRICKLE, max(0.0, deadline - loop.time()))):
                    if not await reader.read(4096):
                        return loop.time() - opened
            except TimeoutError:
                writer.write(b"a")
            except ConnectionError:
                return loop.time() - opened
        return math.inf
    finally:
        writer.close()


async def slow_heads(port: int, count: int, *, give_up: float) -> list[float]:
    """Open `count` trickling connections to `port` at once; how long each stayed open."""
    return list(await asyncio.gather(*(_one(port, give_up) for _ in range(count))))
