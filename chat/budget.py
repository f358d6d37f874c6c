"""One socket's frame budget: a token bucket per frame type, so no client can make its node
do unbounded work however fast it sends.

The budgets sit far above what the page and well-behaved clients send (docs/protocol.md,
"Limits"); a socket that empties one is flooding and is closed with 1008. Per-user limits
across the cluster (publish rate, sockets per user) apply on top.
"""

from __future__ import annotations

import time

from chatcluster.conf import chat_settings


class FrameBudget:
    # One per socket: no __dict__, and a bucket is two floats.
    __slots__ = ("_levels", "_stamps")

    def __init__(self) -> None:
        self._levels: dict[str, float] = {}
        self._stamps: dict[str, float] = {}

    def take(self, kind: str) -> bool:
        """Spend one frame of `kind`; False once its bucket is empty."""
        rate, burst = chat_settings.CHAT_FRAME_BUDGETS[kind]
        now = time.monotonic()
        level = self._levels.get(kind, burst)
        level = min(burst, level + (now - self._stamps.get(kind, now)) * rate)
        self._stamps[kind] = now
        if level < 1:
            self._levels[kind] = level
            return False
        self._levels[kind] = level - 1
        return True
