"""When to reconnect after a socket ends, by its close code (docs/protocol.md, Close codes).

The same policy as the browser client (chat/static/chatcluster/client.js): full jitter over an
exponential backoff, at once after a drain, never after the server refused who we are.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# Full jitter over BASE * 2^attempt, capped so a client waits at most ~10 s.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
# 1012: the node is draining, go elsewhere at once, spread a little so its clients do not
# all arrive in the same instant.
DRAIN_SPREAD = 0.3
# 1013: the node is busy (a reconnect storm) or a backend is briefly away: wait at least
# this, then a backoff of at least 2 s (attempt 2), so a storm spreads out.
BUSY_FLOOR = 0.25
BUSY_MIN_ATTEMPT = 2
# 1008: closed for flooding. The rate limit refills its burst of 20 at 10/s in about
# 2 s, so come back no sooner, and with a backoff of up to 8 s (attempt 4) on top.
FLOOD_FLOOR = 2.0
FLOOD_MIN_ATTEMPT = 4
# A publish answered `unavailable` (or a subscribe) is retried after this plus a backoff.
UNAVAILABLE_WAIT = 0.5
# A gap still open this long after its repair was answered is repaired again.
REPAIR_RECHECK = 1.0

CLOSE_DRAINING = 1012
CLOSE_TRY_AGAIN = 1013
CLOSE_POLICY = 1008
# The socket ended without a close frame (a dropped connection, a killed node).
CLOSE_ABNORMAL = 1006

FATAL = {
    4401: (
        "the server closed the socket with 4401 (not authenticated): the token is missing, bad or expired,"
        " or the user's access ended; pass a token callable that returns a fresh token for each connect"
    ),
    4403: (
        "the server closed the socket with 4403 (Origin not allowed): pass `origin=` with an http(s) origin"
        " whose host is in the server's DJANGO_ALLOWED_HOSTS, or origin=False to send none with a token"
    ),
}


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    return rand() * min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)


def fatal_reason(code: int | None) -> str | None:
    """Why retrying cannot help after `code`, or None when it can."""
    return FATAL.get(code) if code is not None else None


def reconnect_delay(code: int | None, attempt: int, rand: Callable[[], float] = random.random) -> tuple[float, int]:
    """Seconds to wait before reconnecting after `code` (None: no socket at all), and the next attempt number."""
    if code == CLOSE_DRAINING:
        return rand() * DRAIN_SPREAD, attempt
    if code == CLOSE_TRY_AGAIN:
        return BUSY_FLOOR + backoff(max(BUSY_MIN_ATTEMPT, attempt), rand), attempt + 1
    if code == CLOSE_POLICY:
        return FLOOD_FLOOR + backoff(max(FLOOD_MIN_ATTEMPT, attempt), rand), attempt + 1
    return backoff(attempt, rand), attempt + 1


def retry_unavailable(rand: Callable[[], float] = random.random) -> float:
    """Seconds before resending a frame answered `unavailable`."""
    return UNAVAILABLE_WAIT + backoff(BUSY_MIN_ATTEMPT, rand)
