"""channels internals: a consumer's run and message dispatch, without what our consumer does not need.

- channels' `AsyncConsumer.dispatch` calls `aclose_old_connections()` (a thread hop)
  before every handler, to recycle database connections. Our services' own
  `database_sync_to_async` calls already do that, so the consumer overrides `dispatch`
  with `dispatch_direct`, which finds the handler by channels' naming rule.
- channels' `AsyncConsumer.__call__` waits on the socket through `await_many_dispatch`,
  which keeps a task, an `asyncio.wait` future and their callbacks on every idle socket
  (2.5 KB) to wait on one callable. A consumer without a channel layer runs
  `run_direct` instead: the same steps, awaiting `receive` itself.
"""

from __future__ import annotations

from typing import Any

from channels.exceptions import StopConsumer


async def dispatch_direct(consumer: Any, message: dict[str, Any]) -> None:
    """Run the consumer's method for `message["type"]` (`websocket.receive` -> `websocket_receive`)."""
    handler = getattr(consumer, message["type"].replace(".", "_"), None)
    if handler is not None:
        await handler(message)


async def run_direct(consumer: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """channels' `AsyncConsumer.__call__` for an async consumer with no channel layer.

    Same order and the same StopConsumer exit, without `await_many_dispatch`. The
    consumer's `channel_layer_alias` must name no layer (tests/chat/seams/test_channels.py).
    """
    consumer.scope = scope
    consumer.channel_layer = None
    consumer.base_send = send
    try:
        while True:
            await consumer.dispatch(await receive())
    except StopConsumer:
        pass
