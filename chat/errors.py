"""The one application error: services raise it, the edges turn it into a frame or status."""

from __future__ import annotations

from typing import Literal

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
