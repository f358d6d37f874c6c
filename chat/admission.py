"""Admission: past a node's handshake rate, new sockets get 1013 at once.

In a reconnect storm (a node died and its clients all come to this one) every handshake
that is let in costs authentication, a Redis round trip and, per room, a database read.
Letting them all in at once makes every one of them slow, and clients whose handshake
times out come back again, so the storm feeds itself. Past CHAT_ADMIT_RATE handshakes per
second (with bursts of CHAT_ADMIT_BURST) this node answers at once with 1013 "try again
later"; clients back off with jitter and spread themselves out.

The bucket is this process's own: it protects this process's event loop, which is no
state another node needs.
"""

from __future__ import annotations

import time
from typing import Any

from chatcluster import metrics
from chatcluster.conf import chat_settings
from chatcluster.lifecycle import CLOSE_TRY_AGAIN


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AdmissionMiddleware:
    """ASGI middleware for the WebSocket router: refuses handshakes past the node's rate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bucket: TokenBucket | None = None

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # Not a coroutine itself: an admitted socket's task runs the inner application's
        # coroutine, with no frame of ours kept on every idle socket (issue 13).
        if scope["type"] == "websocket":
            if self.bucket is None:
                self.bucket = TokenBucket(rate=chat_settings.CHAT_ADMIT_RATE, burst=chat_settings.CHAT_ADMIT_BURST)
            if not self.bucket.take():
                metrics.CONNECTS.labels("busy").inc()
                return self.refuse(receive, send)
        return self.inner(scope, receive, send)

    @staticmethod
    async def refuse(receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN, "reason": "node busy, try again"})
