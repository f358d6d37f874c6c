"""What the client hands its user besides server frames: state changes, resets and errors."""

from __future__ import annotations

from typing import Literal

import msgspec

from chatcluster.client.frames import Delete, Edit, Error, Message, Presence, React, Typing, Unknown

__all__ = [
    "AnswerLostError",
    "AuthenticationError",
    "ChatClientError",
    "ClientClosedError",
    "Event",
    "Reset",
    "ServerError",
    "State",
    "StateChange",
]

# connecting: before the first socket is authenticated; online: every room is live;
# catching-up: a resubscribe with `since` is replaying; reconnecting: the socket is gone
# and another one is planned; offline: closed for good.
State = Literal["connecting", "online", "catching-up", "reconnecting", "offline"]


class StateChange(msgspec.Struct, frozen=True, kw_only=True):
    """`code` is the close code that ended the socket, `retry_in` the seconds until the next try."""

    state: State
    code: int | None = None
    retry_in: float | None = None
    error: str | None = None


class Reset(msgspec.Struct, frozen=True, kw_only=True):
    """More was missed in `room` than the server replays: reload it with `history`; live messages go on after `seq`."""

    room: str
    seq: int


# Messages and the changes to them (Edit, Delete, React) come in seq order, once each; an
# `Unknown` with a `seq` is a newer server's event of the room's seq stream and comes in
# order with them. An `Error` here answers no call of yours: with `room`, the server ended
# that subscription.
Event = Message | Edit | Delete | React | Presence | Typing | Error | Unknown | StateChange | Reset


class ChatClientError(Exception):
    """Every error the client raises."""


class ServerError(ChatClientError):
    """The server answered a call with an `error` frame (docs/protocol.md, Errors)."""

    def __init__(self, frame: Error) -> None:
        super().__init__(f"{frame.code}: {frame.detail}")
        self.code = frame.code
        self.detail = frame.detail
        self.retry_after = frame.retry_after


class AuthenticationError(ChatClientError):
    """The server refused the credentials (4401) or the Origin (4403): retrying cannot help."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class AnswerLostError(ChatClientError):
    """The socket dropped between sending a call and its answer, and the call is not sent again
    because a repeat would be done twice (an edit): it may or may not have been done."""


class ClientClosedError(ChatClientError):
    """The client was closed (or never connected) before the call could finish."""
