"""The client's events, waiting for the user's `async for`.

Bounded: a reader that falls behind stops the client reading its socket, so the server
holds the frames (and closes with 1013 past its own limit, which the client recovers
from) instead of this process growing without end.
"""

from __future__ import annotations

import asyncio
from collections import deque

from chatcluster.client.events import Event


class EventStream:
    def __init__(self, limit: int) -> None:
        self._items: deque[Event] = deque()
        self._limit = limit
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._ended = False
        self._error: BaseException | None = None

    async def put(self, event: Event) -> None:
        """Add `event`, first waiting while the stream is full."""
        while len(self._items) >= self._limit and not self._ended:
            self._space.clear()
            await self._space.wait()
        self.put_nowait(event)

    def put_nowait(self, event: Event) -> None:
        """Add `event` even past the limit (state changes: few, and never to be lost)."""
        if self._ended:
            return
        self._items.append(event)
        self._arrived.set()

    def end(self, error: BaseException | None = None) -> None:
        """No more events: `get` hands out what is left, then raises `error` or StopAsyncIteration."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._arrived.set()
        self._space.set()

    async def get(self) -> Event:
        while not self._items:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._arrived.clear()
            await self._arrived.wait()
        event = self._items.popleft()
        self._space.set()
        return event
