"""autobahn internals: prepared frames, a socket's compression state, any close code, and
what an idle socket need not keep (its protocol options, its opening handshake)."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FunctionType
from typing import Any

from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import PreparedMessage


def frame_bytes(text: str) -> bytes:
    """The wire bytes of a server text frame (unmasked, uncompressed), built once for many sockets."""
    prepared = PreparedMessage(text.encode(), isBinary=False, applyMask=False, doNotCompress=True)
    wire: bytes = prepared.payloadHybi
    return wire


def compresses(protocol: Any) -> bool:
    """True when the socket negotiated permessage-deflate, so it must frame each message itself."""
    return protocol._perMessageCompress is not None


def send_close(protocol: Any, code: int, reason: str = "") -> None:
    """Start the close handshake with `code` and, if given, a `reason` (cut to the 123 bytes a frame allows).

    autobahn's `sendClose` lets an application use only 1000 or 3000-4999, but our clients
    act on the protocol's own codes (1008, 1011, 1012, 1013); `sendCloseFrame` takes any.
    """
    reason_utf8 = reason.encode()[:123].decode(errors="ignore").encode() if reason else None
    protocol.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)


def share_factory_options(factory: Any, protocol_class: type) -> None:
    """Put the factory's protocol options on the protocol class, not on every protocol.

    autobahn's `_connectionMade` copies its ~30 CONFIG_ATTRS from the factory into each
    protocol's `__dict__`, unless the protocol already has them (`hasattr`): with them
    on the class it copies nothing, which keeps a protocol's dict under the size at which
    it doubles (1.7 KB per socket). Call it once the options are final, before the first
    socket: later `setProtocolOptions` calls no longer reach the protocols.
    """
    for name in protocol_class.CONFIG_ATTRS:  # type: ignore[attr-defined]
        value = getattr(factory, name)
        # A plain function (perMessageCompressionAccept) must not bind to the protocol.
        setattr(protocol_class, name, staticmethod(value) if isinstance(value, FunctionType) else value)


# What a server protocol keeps of its opening handshake: the raw request and response,
# the status line, parsed headers, URI and query parameters. Its server side reads them
# only while shaking hands (processHandshake, succeedHandshake).
HANDSHAKE_ATTRS = (
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_params",
)


def release_handshake(protocol: Any) -> None:
    """Drop what autobahn keeps of an open server socket's opening handshake (call from onOpen)."""
    attrs = vars(protocol)
    for name in HANDSHAKE_ATTRS:
        attrs.pop(name, None)


def send_auto_ping(protocol: Any, write: Any) -> None:
    """autobahn's `_sendAutoPing`, with the ping frame built by hand and handed to `write`.

    daphne pings every open socket every WS_PING_INTERVAL; through autobahn's `sendPing`
    each ping is framed in Python and goes through Twisted's buffered write, the largest
    part of an idle socket's upkeep. A server ping is two header bytes and the payload
    autobahn's pong handling compares against `autoPingPending`.
    """
    protocol.autoPingPendingCall = None
    protocol.autoPingPendingSent = time.time_ns()
    protocol.autoPingPendingSeq += 1
    payload = struct.pack(">QL", protocol.autoPingPendingSent, protocol.autoPingPendingSeq & 0xFFFFFFFF)
    protocol.autoPingPending = payload
    write(b"\x89" + bytes([len(payload)]) + payload)
    # No timeout timer per ping (arming and cancelling one per socket is most of a
    # ping's cost): `auto_pong_overdue` is asked on the node's periodic check instead.


def auto_pong_overdue(protocol: Any) -> bool:
    """True when the pending auto-ping has waited longer than autobahn's `autoPingTimeout`."""
    sent = protocol.autoPingPendingSent
    if not protocol.autoPingPending or not sent or not protocol.autoPingTimeout:
        return False
    return bool(time.time_ns() - sent > protocol.autoPingTimeout * 1e9)


# A client's pong to `send_auto_ping`: FIN + opcode 10, masked, 12 bytes of payload.
_PONG_HEAD = b"\x8a\x8c"
_PONG_LENGTH = 2 + 4 + 12


def take_auto_pong(protocol: Any, data: bytes) -> bool:
    """True when `data` is exactly the pong to the pending auto-ping, which is then settled.

    autobahn parses every frame in Python, a pong included; an idle socket's pong every
    WS_PING_INTERVAL is most of what it costs. Anything else (a partial read, another frame
    in the same read, a stale pong) returns False and goes through autobahn as before.
    """
    pending = protocol.autoPingPending
    if not pending or len(data) != _PONG_LENGTH or data[:2] != _PONG_HEAD or protocol.data:
        return False
    mask = data[2:6]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[6:]))
    if payload != pending:
        return False
    protocol.autoPingPending = None
    protocol.autoPingPendingSent = None
    protocol.autoPingTimeoutCall = None
    return True


def _no_pformat(_: object) -> str:
    return ""


@contextmanager
def without_debug_pformat() -> Iterator[None]:
    """Run autobahn code without the `pformat` it calls for debug lines, logged or not.

    autobahn's `_connectionMade` pretty-prints its 40-odd options into a debug message on
    every connection, whatever the log level: a twentieth of a handshake's CPU. The
    reactor is one thread, so swapping the module's name for the call is safe.
    """
    saved = autobahn_protocol.pformat
    autobahn_protocol.pformat = _no_pformat  # type: ignore[assignment]
    try:
        yield
    finally:
        autobahn_protocol.pformat = saved
