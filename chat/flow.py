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

from chatcluster.seams import autobahn, twisted

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
            self._wire = autobahn.frame_bytes(self.text)
        return self._wire


class Gate:
    """`asyncio.Event`'s is_set/set/clear/wait, without its idle cost.

    An Event keeps a deque of waiters (760 bytes) from birth; every socket has one gate
    and almost never waits on it. This keeps a list only while someone waits.
    """

    __slots__ = ("_open", "_waiters")

    def __init__(self, is_open: bool = False) -> None:
        self._open = is_open
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        if self._open:
            return
        self._open = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if self._open:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None


class FlowControl:
    """Twisted's IPushProducer for one socket, as an asyncio event, and its direct writer."""

    __slots__ = ("protocol", "writable")

    def __init__(self, protocol: Any = None) -> None:
        self.protocol = protocol
        self.writable = Gate(is_open=True)

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        self.writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self.writable.set()

    def stopProducing(self) -> None:  # noqa: N802
        # The connection is gone; let a waiting sender run into the closed socket.
        self.writable.set()

    def inbox_taken(self) -> None:
        """The app took a frame the socket read: the node may read that socket again (node.py)."""
        if self.protocol is not None:
            self.protocol.inbox_taken()

    def write(self, frame: OutFrame) -> bool:
        """Write `frame` now; False when the socket is no longer open (the frame is dropped)."""
        protocol = self.protocol
        if protocol is None or protocol.state != protocol.STATE_OPEN:
            return False
        if autobahn.compresses(protocol):
            # Compressed sockets frame each message themselves (daphne never negotiates it).
            protocol.sendMessage(frame.text.encode())
        else:
            twisted.write_now(protocol.transport, frame.wire)
        return True
