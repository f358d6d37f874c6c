"""The one application error: services raise it, the edges turn it into a frame or status."""

from __future__ import annotations

from typing import Literal

import redis.exceptions
from django import db

ErrorCode = Literal[
    "bad_request", "unauthorized", "forbidden", "not_found", "too_large", "rate_limited", "unavailable", "internal"
]

HTTP_STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


class ChatError(Exception):
    def __init__(self, code: ErrorCode, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ErrorCode = code
        self.detail = detail
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]


# Redis or the database not answering (down, restarting, paused past a timeout). Nothing
# was half done: the caller answers `unavailable` and the client retries.
BACKEND_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    db.OperationalError,
    db.InterfaceError,
    ConnectionError,
    TimeoutError,
)


def unavailable(exc: BaseException) -> ChatError:
    return ChatError("unavailable", f"a backing service is not answering ({type(exc).__name__}); retry shortly")
