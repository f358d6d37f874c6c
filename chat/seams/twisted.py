"""Twisted internals: a TCP transport's write buffer, to send a frame at once when it is empty."""

from __future__ import annotations

from typing import Any


def write_now(transport: Any, data: bytes) -> None:
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
