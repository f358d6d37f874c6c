"""autobahn internals: prepared frames, a socket's compression state, any close code, and
what an idle socket need not keep (its protocol options, its opening handshake)."""

from __future__ import annotations

from types import FunctionType
from typing import Any

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
