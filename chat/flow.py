"""Send backpressure for one socket, shared by the node server and the consumer.

Kept apart from `chat.node`, which imports daphne and with it installs Twisted's reactor.
"""

from __future__ import annotations

import asyncio

# The scope extension under which the node server hands a socket's FlowControl to the app.
FLOW_EXTENSION = "chat.flow"


class FlowControl:
    """Twisted's IPushProducer for one socket, as an asyncio event the consumer awaits."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        self.writable.clear()

    def resumeProducing(self) -> None:  # noqa: N802
        self.writable.set()

    def stopProducing(self) -> None:  # noqa: N802
        # The connection is gone; let a waiting sender run into the closed socket.
        self.writable.set()
