"""One socket's way out: frames leave in the order given, held while the socket is paused.

A client that stops reading would make the node hold its frames without bound, so past
SEND_QUEUE_MAX waiting frames, or SEND_QUEUE_MAX_BYTES of them, the queue is dropped and
the socket closed with 1013; the client reconnects and recovers what it missed with `since`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from chatcluster import metrics
from chatcluster.conf import chat_settings
from chatcluster.flow import FlowControl, OutFrame
from chatcluster.lifecycle import CLOSE_TOO_SLOW

logger = logging.getLogger(__name__)


class SendQueue:
    # One per socket: no __dict__.
    __slots__ = (
        "_closer",
        "close_socket",
        "closing",
        "conn",
        "flow",
        "flushing",
        "outbox",
        "send_text",
        "user",
        "waiting_bytes",
    )

    def __init__(
        self,
        *,
        flow: FlowControl | None,
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int], Coroutine[Any, Any, None]],
        conn: str,
        user: str,
    ) -> None:
        # Without flow control (tests, plain daphne) frames go through the ASGI send.
        self.flow = flow
        self.send_text = send_text
        self.close_socket = close
        self.conn = conn
        self.user = user
        # Frames waiting for the socket; None while none do (an empty deque is 760 bytes).
        self.outbox: deque[OutFrame] | None = None
        # The characters of the frames in the outbox (a frame's bytes, give or take UTF-8).
        self.waiting_bytes = 0
        self.flushing: asyncio.Task[None] | None = None
        # Set once the socket is closing: frames are dropped from then on.
        self.closing = False
        self._closer: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """The socket is closing: drop what waits and whatever comes."""
        self.closing = True
        self.outbox = None
        self.waiting_bytes = 0

    def backed_up(self) -> bool:
        """More than half the byte budget waits: the client is not reading what it asked for."""
        return self.waiting_bytes > chat_settings.SEND_QUEUE_MAX_BYTES // 2

    def send(self, frame: OutFrame | str) -> None:
        """Send a frame, or queue it behind earlier ones; frames leave in the order given."""
        if self.closing:
            return
        if isinstance(frame, str):
            frame = OutFrame(frame)
        flow = self.flow
        if flow is not None and self.flushing is None and flow.writable.is_set():
            # The common case: nothing waiting, socket writable. Write now, no task.
            flow.write(frame)
            return
        if self.outbox is None:
            self.outbox = deque()
        size = len(frame.text)
        if (
            len(self.outbox) >= chat_settings.SEND_QUEUE_MAX
            or self.waiting_bytes + size > chat_settings.SEND_QUEUE_MAX_BYTES
        ):
            # The client stopped reading. Holding more would grow the node without bound;
            # it reconnects and recovers what it missed with `since`.
            logger.info(
                "closing %s (%s): %d frames, %d bytes waiting",
                self.conn,
                self.user,
                len(self.outbox),
                self.waiting_bytes,
            )
            metrics.SLOW_CLOSES.inc()
            metrics.SEND_QUEUE_DROPS.inc(len(self.outbox) + 1)
            self.stop()
            self._closer = asyncio.create_task(self.close_socket(CLOSE_TOO_SLOW))
            return
        self.outbox.append(frame)
        self.waiting_bytes += size
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        flow = self.flow
        try:
            while self.outbox:
                if flow is None:
                    await self.send_text(self._take().text)
                elif not flow.writable.is_set():
                    await flow.writable.wait()
                else:
                    flow.write(self._take())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("socket %s went away with %d frames unsent", self.conn, len(self.outbox or ()))
            self.outbox = None
            self.waiting_bytes = 0
        finally:
            self.flushing = None
            if not self.outbox:
                self.outbox = None
                self.waiting_bytes = 0

    def _take(self) -> OutFrame:
        assert self.outbox is not None
        frame = self.outbox.popleft()
        self.waiting_bytes -= len(frame.text)
        return frame
