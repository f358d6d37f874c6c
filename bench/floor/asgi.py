"""`daphne bench.floor.asgi:application`: the floor of the stack the nodes are built on.

Daphne (Twisted, autobahn) with an ASGI app that does nothing but accept: no Django, no
channels, no Redis, no database. What it reaches is the most any daphne node can reach on
the same machine, so it is the ceiling for our connect rate and idle upkeep.
"""

from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.disconnect":
            return
