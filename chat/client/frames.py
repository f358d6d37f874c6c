"""The /ws/ frames of docs/protocol.md: server frames decoded into typed structs, client frames encoded.

`decode` keeps a frame of a type it does not know as `Unknown`, so a newer server never
breaks an older client. `encode_raw` sends what no encoder here knows yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "Ack",
    "Delete",
    "Edit",
    "Error",
    "FrameError",
    "History",
    "HistoryMessage",
    "Message",
    "Pong",
    "Presence",
    "React",
    "ServerFrame",
    "Subscribed",
    "Typing",
    "Unknown",
    "Unsubscribed",
    "decode",
    "decode_raw",
    "encode_delete",
    "encode_edit",
    "encode_history",
    "encode_ping",
    "encode_publish",
    "encode_raw",
    "encode_react",
    "encode_subscribe",
    "encode_typing",
    "encode_unsubscribe",
]


class FrameError(ValueError):
    """The server sent text that is not a JSON object with a string `type`."""


# --- server frames ------------------------------------------------------------------


class ServerFrameBase(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    """`ref` echoes the client frame this one answers."""

    ref: str | None = None


class Message(ServerFrameBase, tag="message", frozen=True):
    """A message. Replayed (a subscribe with `since`), it is in its current state: the latest
    body with `edited` (a timestamp) once edited, `deleted` with an empty body once deleted;
    the changes themselves follow as their own frames."""

    room: str
    seq: int
    user: str
    body: str
    ts: str
    edited: str | None = None
    deleted: bool = False


# Changes to a message: each is an event of the room's seq stream under a seq of its own,
# delivered in order with the messages. `target` is the seq of the message changed.


class Edit(ServerFrameBase, tag="edit", frozen=True):
    """`user` (the author) changed the body of message `target` to `body`."""

    room: str
    seq: int
    target: int
    user: str
    body: str
    ts: str


class Delete(ServerFrameBase, tag="delete", frozen=True):
    """`user` (the author, a moderator of the room or staff) deleted message `target`."""

    room: str
    seq: int
    target: int
    user: str
    ts: str


class React(ServerFrameBase, tag="react", frozen=True):
    """`user` gave (`on`) or took back the reaction `emoji` (one emoji grapheme) to message `target`."""

    room: str
    seq: int
    target: int
    user: str
    emoji: str
    on: bool
    ts: str


class Ack(ServerFrameBase, tag="ack", frozen=True):
    """The publish (or edit, delete, react) is stored as `seq`."""

    room: str
    seq: int


class Subscribed(ServerFrameBase, tag="subscribed", frozen=True):
    """`seq` is the room's last seq; `recovered` is set only when the subscribe carried `since`."""

    room: str
    seq: int
    presence: list[str] = []
    recovered: bool | None = None


class Unsubscribed(ServerFrameBase, tag="unsubscribed", frozen=True):
    room: str


class Presence(ServerFrameBase, tag="presence", frozen=True):
    room: str
    joined: list[str] = []
    left: list[str] = []


class Typing(ServerFrameBase, tag="typing", frozen=True):
    room: str
    user: str


class HistoryMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A stored message as `history` lists it (no `type`), in its final state.

    `edited` is when it was last edited; a deleted message has `deleted` and no body (""
    here). `reactions` lists, per emoji, the users in the order they reacted.
    """

    room: str
    seq: int
    user: str
    body: str = ""
    ts: str
    edited: str | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = {}


class History(ServerFrameBase, tag="history", frozen=True):
    room: str
    messages: list[HistoryMessage] = []


class Error(ServerFrameBase, tag="error", frozen=True):
    """A frame failed; with `room` and no `ref`, the server ended that subscription."""

    code: str
    detail: str = ""
    room: str | None = None
    retry_after: float | None = None


class Pong(ServerFrameBase, tag="pong", frozen=True):
    pass


ServerFrame = (
    Message | Edit | Delete | React | Ack | Subscribed | Unsubscribed | Presence | Typing | History | Error | Pong
)


class Unknown(msgspec.Struct, frozen=True):
    """A frame this client has no struct for (a newer server's), with every field as sent."""

    type: str
    fields: dict[str, Any]

    @property
    def room(self) -> str | None:
        room = self.fields.get("room")
        return room if isinstance(room, str) else None

    @property
    def seq(self) -> int | None:
        """Set when the frame is an event of its room's seq stream."""
        seq = self.fields.get("seq")
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None

    @property
    def ref(self) -> str | None:
        ref = self.fields.get("ref")
        return ref if isinstance(ref, str) else None


_decoder: msgspec.json.Decoder[ServerFrame] = msgspec.json.Decoder(ServerFrame)
_raw_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode(data: str | bytes) -> ServerFrame | Unknown:
    """One server frame; a type this client does not know, or a shape it did not expect, is `Unknown`."""
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError:
        raw = decode_raw(data)
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise FrameError(f"frame has no string type: {raw!r:.200}") from None
        return Unknown(kind, raw)
    except msgspec.DecodeError:
        raise FrameError(f"frame is not JSON: {data!r:.200}") from None


def decode_raw(data: str | bytes) -> dict[str, Any]:
    """Any JSON object, as a dict."""
    try:
        raw = _raw_decoder.decode(data)
    except msgspec.DecodeError:
        raise FrameError(f"frame is not JSON: {data!r:.200}") from None
    if not isinstance(raw, dict):
        raise FrameError(f"frame is not a JSON object: {data!r:.200}")
    return raw


# --- client frames ------------------------------------------------------------------
# Each encoder returns the UTF-8 JSON of one text frame. Optional fields left at None
# are not sent, so the server applies its defaults.


class _Command(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, omit_defaults=True):
    ref: str | None = None


class _Subscribe(_Command, tag="subscribe", frozen=True):
    room: str
    since: int | None = None


class _Unsubscribe(_Command, tag="unsubscribe", frozen=True):
    room: str


class _Publish(_Command, tag="publish", frozen=True):
    room: str
    body: str
    key: str | None = None


class _Typing(_Command, tag="typing", frozen=True):
    room: str


class _History(_Command, tag="history", frozen=True):
    room: str
    before: int | None = None
    limit: int | None = None


class _Ping(_Command, tag="ping", frozen=True):
    pass


class _Edit(_Command, tag="edit", frozen=True):
    room: str
    target: int
    body: str


class _Delete(_Command, tag="delete", frozen=True):
    room: str
    target: int


class _React(_Command, tag="react", frozen=True):
    room: str
    target: int
    emoji: str
    on: bool


def encode_subscribe(room: str, *, since: int | None = None, ref: str | None = None) -> bytes:
    """With `since`, the server first replays every message after it."""
    return _encoder.encode(_Subscribe(room, since, ref=ref))


def encode_unsubscribe(room: str, *, ref: str | None = None) -> bytes:
    return _encoder.encode(_Unsubscribe(room, ref=ref))


def encode_publish(room: str, body: str, *, key: str | None = None, ref: str | None = None) -> bytes:
    """`key` (1 to 64 characters) makes a retry store the message once (idempotent publish)."""
    return _encoder.encode(_Publish(room, body, key, ref=ref))


def encode_typing(room: str, *, ref: str | None = None) -> bytes:
    return _encoder.encode(_Typing(room, ref=ref))


def encode_history(room: str, *, before: int | None = None, limit: int | None = None, ref: str | None = None) -> bytes:
    """Messages with seq < `before` (the newest without it), at most `limit` (server default 50, cap 100)."""
    return _encoder.encode(_History(room, before, limit, ref=ref))


def encode_ping(*, ref: str | None = None) -> bytes:
    return _encoder.encode(_Ping(ref=ref))


def encode_edit(room: str, target: int, body: str, *, ref: str | None = None) -> bytes:
    """Change the body of your message `target` (a message's seq, not a change's)."""
    return _encoder.encode(_Edit(room, target, body, ref=ref))


def encode_delete(room: str, target: int, *, ref: str | None = None) -> bytes:
    """Delete message `target`: yours, or any as the room's owner, a moderator or staff."""
    return _encoder.encode(_Delete(room, target, ref=ref))


def encode_react(room: str, target: int, emoji: str, *, on: bool = True, ref: str | None = None) -> bytes:
    """Give (`on`) or take back the reaction `emoji`, one emoji grapheme, to message `target`."""
    return _encoder.encode(_React(room, target, emoji, on, ref=ref))


def encode_raw(fields: Mapping[str, Any]) -> bytes:
    """A frame with exactly these fields: for a frame type (or field) no encoder here knows."""
    return _encoder.encode(fields)
