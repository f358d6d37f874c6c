"""autobahn internals: prepared frames, a socket's compression state, and any close code."""

from __future__ import annotations

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
