"""A node's publishes, taken through rate limit, database and broadcast in batches.

Every publish, from a socket or the HTTP API, waits here for its outcome. One batch at
a time goes through three steps: one Redis call takes every publisher's rate-limit
token, one database transaction stores the messages, one pipelined Redis write
broadcasts them. While a batch is in flight the next one gathers, so under load each
step carries many messages, and when idle a publish waits for no one (its batch is
itself). One writer per node also keeps the node's own threads from queueing on the
database's write lock.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async

from chatcluster import broadcast, metrics
from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.models import Message
from chatcluster.services.messages import PostedMessage, PublishRequest, message_publish_batch
from chatcluster.services.ratelimit import ratelimit_publish_many, ratelimit_refusal
from chatcluster.signals import message_posted

logger = logging.getLogger(__name__)

# Seconds a broadcast may take after the acks; past it the tail check delivers the messages.
BROADCAST_TIMEOUT = 2.0

Waiter = tuple[PublishRequest, "asyncio.Future[PostedMessage]"]

# The node's publishes have a database thread of their own. On the shared one they would
# queue behind every subscribe's and handshake's reads, and a reconnect storm (a thousand
# replays) would hold every ack for seconds. One thread: one writer per node.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-publish")


def _publish_batch(*, requests: list[PublishRequest]) -> list[PostedMessage | ChatError]:
    return message_publish_batch(requests=requests)


_store_batch = database_sync_to_async(_publish_batch, thread_sensitive=False, executor=_WRITER)


def _apply(change: Callable[[], PostedMessage]) -> PostedMessage:
    return change()


# Changes write on the same one thread as publishes: one writer per node.
_store_change = database_sync_to_async(_apply, thread_sensitive=False, executor=_WRITER)


class Publisher:
    def __init__(self) -> None:
        self._waiting: list[Waiter] = []
        self._writer: asyncio.Task[None] | None = None
        # Stored since the last broadcast, and waiting for the message_posted receivers.
        self._posted: list[tuple[Any, PostedMessage]] = []
        self._signals: asyncio.Queue[tuple[Any, PostedMessage]] = asyncio.Queue()
        self._signaller: asyncio.Task[None] | None = None

    async def publish(self, request: PublishRequest) -> PostedMessage:
        """Store and broadcast `request` with the next batch; raises its ChatError or the batch's failure."""
        done: asyncio.Future[PostedMessage] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, done))
        if self._writer is None:
            # A context of its own: the writer serves every later publish, and must not
            # inherit the first one's request, whose thread-sensitive executor quits when
            # that request ends ("CurrentThreadExecutor already quit" under concurrent
            # HTTP publishes).
            self._writer = asyncio.create_task(self._write(), context=contextvars.Context())
        return await done

    async def change(self, *, author: Any, apply: Callable[[], PostedMessage]) -> PostedMessage:
        """An edit, delete or react: one publish token, stored by `apply`, then broadcast.

        Not batched: changes are rare next to messages, and each needs its target's row.
        """
        (wait,) = await ratelimit_publish_many(user_ids=[author.pk])
        if wait > 0:
            raise ratelimit_refusal(wait=wait)
        posted = await _store_change(apply)
        if posted.created:
            metrics.MESSAGES_IN.inc()
            await self._broadcast([posted])
        return posted

    async def _write(self) -> None:
        batch: list[Waiter] = []
        try:
            while self._waiting:
                batch = self._waiting[: chat_settings.CHAT_PUBLISH_BATCH]
                del self._waiting[: len(batch)]
                try:
                    stored = await self._store(await self._take_tokens(batch))
                except Exception as exc:
                    # Redis or the database is down or failed the whole batch: every publish
                    # still waiting fails the same way (nothing was stored); the next batch
                    # tries again.
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                batch = []
                if stored:
                    await self._broadcast(stored)
                    self._notify()
        finally:
            self._writer = None
            for _, done in [*batch, *self._waiting]:
                if not done.done():
                    done.set_exception(ChatError("unavailable", "the node is stopping; retry"))
            self._waiting = []

    async def _take_tokens(self, batch: list[Waiter]) -> list[Waiter]:
        limited = [(request, done) for request, done in batch if request.rate_limited]
        allowed = [(request, done) for request, done in batch if not request.rate_limited]
        if not limited:
            return allowed
        waits = await ratelimit_publish_many(user_ids=[request.author.pk for request, _ in limited])
        for (request, done), wait in zip(limited, waits, strict=True):
            if wait > 0:
                if not done.done():
                    done.set_exception(ratelimit_refusal(wait=wait))
            else:
                allowed.append((request, done))
        return allowed

    async def _store(self, batch: list[Waiter]) -> list[PostedMessage]:
        """Store the batch; each waiter learns its outcome (the ack) before the broadcast."""
        if not batch:
            return []
        outcomes = await _store_batch(requests=[r for r, _ in batch])
        stored = []
        for (request, done), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ChatError):
                if not done.done():
                    done.set_exception(outcome)
                continue
            if not done.done():  # else its socket went away; the message is stored all the same
                done.set_result(outcome)
            if outcome.created:
                stored.append(outcome)
                self._posted.append((request.author, outcome))
        metrics.MESSAGES_IN.inc(len(stored))
        return stored

    def _notify(self) -> None:
        """Hand the batch to the message_posted receivers, if the host has any, off the publish path."""
        posted, self._posted = self._posted, []
        if not message_posted.has_listeners():
            return
        for item in posted:
            self._signals.put_nowait(item)
        if self._signaller is None or self._signaller.done():
            # A context of its own, not the publishing request's: a sync receiver's thread
            # must not be that request's executor, which quits when the request ends.
            self._signaller = asyncio.create_task(self._signal(), context=contextvars.Context())

    async def _signal(self) -> None:
        while not self._signals.empty():
            author, posted = self._signals.get_nowait()
            message = json.loads(posted.frame)
            # Robust: Django logs a receiver's exception (logger django.dispatch) and goes on.
            await message_posted.asend_robust(
                sender=Message, room=posted.room, seq=posted.seq, user=author, message=message
            )

    async def _broadcast(self, stored: list[PostedMessage]) -> None:
        try:
            async with asyncio.timeout(BROADCAST_TIMEOUT):
                await broadcast.publish_messages([(p.room, p.seq, p.frame, p.ts) for p in stored])
        except Exception as exc:
            # Stored and acked: every node's tail check reads them from the database
            # within a few seconds of Redis answering again.
            metrics.REDIS_ERRORS.labels("broadcast").inc()
            logger.warning("broadcast of %d messages failed (%r); nodes will read them back", len(stored), exc)


# One publisher per event loop: a node has one; test runners and management commands
# bring their own loops, and a writer task must never outlive the loop it runs on.
_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Publisher] = weakref.WeakKeyDictionary()


def get_publisher() -> Publisher:
    loop = asyncio.get_running_loop()
    publisher = _publishers.get(loop)
    if publisher is None:
        publisher = _publishers[loop] = Publisher()
    return publisher
