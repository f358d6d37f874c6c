"""The way out of a node for frames: encoded once, written to each socket, held when slow.

Kept apart from `chat.node`, which imports daphne and with it installs Twisted's reactor.

- `OutFrame` is a server frame as text, plus its WebSocket wire bytes built once (by
  autobahn's `PreparedMessage`) however many sockets it goes to.
- `FlowControl` is Twisted's push producer for one socket (send backpressure: daphne has
  none, daphne#170) and the socket's direct writer. Writing the prepared bytes straight to
  the transport skips, per delivery, the ASGI send, daphne's reply dispatch and autobahn's
  framing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autobahn.websocket.protocol import PreparedMessage

# The scope extension under which the node server hands a socket's FlowControl to the app.
FLOW_EXTENSION = "chat.flow"


class OutFrame:
    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            prepared = PreparedMessage(self.text.encode(), isBinary=False, applyMask=False, doNotCompress=True)
            self._wire = prepared.payloadHybi
        return self._wire


class FlowControl:
    """Twisted's IPushProducer for one socket, as an asyncio event, and its direct writer."""

    def __init__(self, protocol: Any = None) -> None:
        self.protocol = protocol
        self.writable = asyncio.Event()
        self.writable.set()

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        self.writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self.writable.set()

    def stopProducing(self) -> None:  # noqa: N802
        # The connection is gone; let a waiting sender run into the closed socket.
        self.writable.set()

    def write(self, frame: OutFrame) -> bool:
        """Write `frame` now; False when the socket is no longer open (the frame is dropped)."""
        protocol = self.protocol
        if protocol is None or protocol.state != protocol.STATE_OPEN:
            return False
        if protocol._perMessageCompress is not None:
            # Compressed sockets frame each message themselves (daphne never negotiates it).
            protocol.sendMessage(frame.text.encode())
        else:
            _write_now(protocol.transport, frame.wire)
        return True


def _write_now(transport: Any, data: bytes) -> None:
    """Send `data` on the socket at once when nothing waits before it, else queue it.

    Twisted's `write` always buffers and asks the reactor to watch the socket for
    writability, then sends on the next loop turn and stops watching: two epoll_ctl
    calls and a callback per frame, the largest cost of a fan-out. An idle socket's
    kernel buffer takes the frame now; only what it refuses goes through Twisted.
    """
    busy = transport._tempDataBuffer or transport.offset != len(transport.dataBuffer)
    if busy or transport.TLS or transport.disconnecting or not transport.connected:
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # Reset or closed under us: Twisted's own write path finds out and closes it.
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])
