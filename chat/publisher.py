"""A node's publishes, written to the database in batches by one writer at a time.

Every socket's `publish` waits here for its outcome. While one batch commits, the next
gathers, so under load each commit carries many messages, and when idle a publish waits
for no one (its batch is itself). One writer per node also keeps the node's own threads
from queueing on the database's write lock.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from chat.errors import ChatError
from chat.services.messages import PostedMessage, PublishRequest, message_publish_batch

logger = logging.getLogger(__name__)


class Publisher:
    def __init__(self) -> None:
        self._waiting: list[tuple[PublishRequest, asyncio.Future[PostedMessage]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def publish(self, request: PublishRequest) -> PostedMessage:
        """Store `request` with the next batch; raises its ChatError or the batch's failure."""
        done: asyncio.Future[PostedMessage] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await done

    async def _write(self) -> None:
        batch: list[tuple[PublishRequest, asyncio.Future[PostedMessage]]] = []
        try:
            while self._waiting:
                batch = self._waiting[: settings.CHAT_PUBLISH_BATCH]
                del self._waiting[: len(batch)]
                try:
                    outcomes = await database_sync_to_async(message_publish_batch)(requests=[r for r, _ in batch])
                except Exception as exc:
                    # The database is down or failed the whole batch: every publish in it
                    # fails the same way (nothing was stored), the next batch tries again.
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():
                        continue  # its socket went away meanwhile
                    if isinstance(outcome, ChatError):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
                batch = []
        finally:
            self._writer = None
            for _, done in [*batch, *self._waiting]:
                if not done.done():
                    done.set_exception(ChatError("unavailable", "the node is stopping; retry"))
            self._waiting = []


_publisher: Publisher | None = None


def get_publisher() -> Publisher:
    global _publisher
    if _publisher is None:
        _publisher = Publisher()
    return _publisher
