"""The WebSocket protocol: client frames parsed into typed commands, server frames encoded.

`parse_frame` is the one place client text is decoded. It returns a command or raises
`ChatError`, never anything half-parsed. Server frames are encoded here too, once per
message, whatever the number of recipients.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec

from chatcluster.errors import ChatError
from chatcluster.models import SLUG_PATTERN

MAX_REF = 64
MAX_SEQ = 2**63 - 1

Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN)]
Ref = Annotated[str, msgspec.Meta(max_length=MAX_REF)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
# A client-chosen idempotency key for publish (protocol extension, docs/protocol.md).
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Command(msgspec.Struct, tag_field="type", frozen=True):
    ref: Ref | None = None


class Subscribe(Command, tag="subscribe", frozen=True):
    room: Slug = ""
    since: Seq | None = None


class Unsubscribe(Command, tag="unsubscribe", frozen=True):
    room: Slug = ""


class Publish(Command, tag="publish", frozen=True):
    room: Slug = ""
    body: str = ""
    key: Key | None = None


class Typing(Command, tag="typing", frozen=True):
    room: Slug = ""


class History(Command, tag="history", frozen=True):
    room: Slug = ""
    before: Seq | None = None
    limit: Limit = 50


class Ping(Command, tag="ping", frozen=True):
    pass


class Edit(Command, tag="edit", frozen=True):
    room: Slug = ""
    target: Seq = 0
    body: str = ""


class Delete(Command, tag="delete", frozen=True):
    room: Slug = ""
    target: Seq = 0


class React(Command, tag="react", frozen=True):
    room: Slug = ""
    target: Seq = 0
    # One emoji grapheme; its length in code points is checked with the rest (services/changes.py).
    emoji: Annotated[str, msgspec.Meta(max_length=64)] = ""
    on: bool = True


AnyCommand = Subscribe | Unsubscribe | Publish | Typing | History | Ping | Edit | Delete | React
ROOM_COMMANDS = (Subscribe, Unsubscribe, Publish, Typing, History, Edit, Delete, React)
CHANGE_COMMANDS = (Edit, Delete, React)

_decoder = msgspec.json.Decoder(AnyCommand)
_loose_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def parse_frame(text: str) -> AnyCommand:
    try:
        command = _decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise ChatError("bad_request", _explain(exc)) from None
    except msgspec.DecodeError:
        raise ChatError("bad_request", "frame is not valid JSON") from None
    except RecursionError:
        # msgspec's own depth limit: a frame of thousands of nested arrays or objects.
        raise ChatError("bad_request", "frame nests too deeply") from None
    if isinstance(command, ROOM_COMMANDS) and not command.room:
        raise ChatError("bad_request", "room is required")
    if isinstance(command, CHANGE_COMMANDS) and not command.target:
        raise ChatError("bad_request", "target is required: the seq of a message")
    return command


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    if "Expected `object`" in message and "`$`" not in message.replace("at `$`", ""):
        return "frame must be a JSON object with a type"
    if "Missing required field `type`" in message:
        return "frame must carry a type"
    if "Invalid value" in message and "$.type" in message:
        return "unknown frame type; see docs/protocol.md"
    return message


def ref_of(text: str) -> str | None:
    """The ref of a frame that failed to parse, so even its error can be matched up.

    None when there is none to echo safely: a ref that is not valid Unicode (a lone
    surrogate escape) could not be sent back, and a frame nested past the parsers' depth
    limit has no ref worth the recursion.
    """
    try:
        raw = _loose_decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        try:
            # The stdlib parser also reads what msgspec refuses, such as a lone surrogate
            # escape elsewhere in the frame, so that frame's error still carries its ref.
            raw = json.loads(text)
        except (ValueError, RecursionError):
            return None
    ref = raw.get("ref") if isinstance(raw, dict) else None
    if not isinstance(ref, str) or len(ref) > MAX_REF:
        return None
    try:
        ref.encode()
    except UnicodeEncodeError:
        return None
    return ref


def encode(frame: dict[str, Any]) -> str:
    return _encoder.encode(frame).decode()


def error_frame(exc: ChatError, ref: str | None = None, *, room: str | None = None) -> str:
    """An `error` frame; `room` names the room of an error no client frame caused."""
    frame: dict[str, Any] = {"type": "error", "code": exc.code, "detail": exc.detail}
    if room is not None:
        frame["room"] = room
    if exc.retry_after is not None:
        frame["retry_after"] = exc.retry_after
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)
