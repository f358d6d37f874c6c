"""channels internals: a consumer's message dispatch, without the thread hop per message.

channels' `AsyncConsumer.dispatch` calls `aclose_old_connections()` (a thread hop) before
every handler, to recycle database connections. Our services' own
`database_sync_to_async` calls already do that, so the consumer overrides `dispatch`
with `dispatch_direct`, which finds the handler by channels' naming rule.
"""

from __future__ import annotations

from typing import Any


async def dispatch_direct(consumer: Any, message: dict[str, Any]) -> None:
    """Run the consumer's method for `message["type"]` (`websocket.receive` -> `websocket_receive`)."""
    handler = getattr(consumer, message["type"].replace(".", "_"), None)
    if handler is not None:
        await handler(message)
