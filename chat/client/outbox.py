"""Publishes waiting for their ack: sent one at a time in the order written, each with its key.

One at a time, as the browser client does, so a user's messages are stored in the order
they were written even when the rate limit turns one back. A publish stays here until it
is acked or refused for good; after a drop it is sent again with the same key, which the
server stores once (docs/protocol.md, Idempotent publish).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chatcluster.client import policy
from chatcluster.client.events import ServerError
from chatcluster.client.frames import Error

# Errors after which a publish stays pending, to be sent again with its key.
RETRIED = ("rate_limited", "unavailable")
# A rate-limited publish waits `retry_after` plus this margin, so the bucket has its token.
RATE_MARGIN = 0.05


@dataclass(eq=False)
class Pending:
    ref: str
    room: str
    body: str
    key: str
    future: asyncio.Future[int]


class Outbox:
    def __init__(self) -> None:
        self.pending: dict[str, Pending] = {}  # in the order written
        self.inflight: str | None = None  # the ref of the one publish sent and not yet answered
        self.hold_until = 0.0  # loop time before which nothing is sent (rate limited)

    def next(self, now: float) -> Pending | None:
        """The publish to send now, marked in flight; none while one waits for its answer or a limit holds."""
        if self.inflight is not None or now < self.hold_until:
            return None
        publish = next((p for p in self.pending.values() if not p.future.done()), None)
        if publish is not None:
            self.inflight = publish.ref
        return publish

    def acked(self, ref: str | None, seq: int) -> None:
        self._answered(ref)
        publish = self.pending.pop(ref or "", None)
        if publish is not None and not publish.future.done():
            publish.future.set_result(seq)

    def refused(self, frame: Error, now: float) -> float | None:
        """An error answered `frame.ref`: the seconds until it is sent again, or None when it failed for good."""
        self._answered(frame.ref)
        publish = self.pending.get(frame.ref or "")
        if publish is None:
            return None
        if frame.code not in RETRIED:
            del self.pending[publish.ref]
            if not publish.future.done():
                publish.future.set_exception(ServerError(frame))
            return None
        wait = policy.retry_unavailable() if frame.code == "unavailable" else (frame.retry_after or 1.0) + RATE_MARGIN
        self.hold_until = now + wait
        return wait

    def answered_by_error(self, frame: Error) -> bool:
        return frame.ref is not None and (frame.ref in self.pending or frame.ref == self.inflight)

    def dropped(self) -> None:
        """The socket is gone: whatever was in flight goes again, with its key, on the next."""
        self.inflight = None

    def fail_all(self, error: Exception) -> None:
        for publish in self.pending.values():
            if not publish.future.done():
                publish.future.set_exception(error)

    def _answered(self, ref: str | None) -> None:
        if ref is not None and ref == self.inflight:
            self.inflight = None
