"""Twisted internals: a TCP transport's write buffer, to send a frame at once when it is empty;
and the HTTP/1.1 channel, to give each request head a deadline."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http


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


# --- a deadline for each request head -------------------------------------------------

# What a client whose head came too late reads before the connection closes.
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class HeadDeadlineChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel, where each request head must arrive within `head_timeout`.

    Twisted's own `timeOut` is an idle timeout that every byte received resets, so a
    client trickling its head a byte at a time (slowloris) holds the connection for ever.
    Here the clock starts when the connection opens (for the first request) or with the
    first byte of the next one (on a kept-alive connection, whose wait for that byte is
    Twisted's idle timeout), and stops at the blank line that ends the head: a body, a
    long response and a WebSocket upgraded from the request are not timed by it. A head
    still incomplete at the deadline gets 408 and the connection closes.
    """

    head_timeout: float | None = None
    _head_call: Any = None
    _in_head = True

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's
        super().connectionMade()
        self._start_head_clock()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self._in_head and self._head_call is None:
            self._start_head_clock()
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:  # noqa: N802
        self._in_head = False
        self._stop_head_clock()
        super().allHeadersReceived()

    def requestDone(self, request: Any) -> None:  # noqa: N802
        # Back to reading a head, before Twisted replays what the client pipelined: that
        # may complete the next head (allHeadersReceived) or start one, which is timed.
        self._in_head = True
        super().requestDone(request)
        if self._in_head and self._head_call is None and (self._buffer or self.requests):
            self._start_head_clock()

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._stop_head_clock()
        super().connectionLost(reason)

    def _start_head_clock(self) -> None:
        if self.head_timeout:
            self._head_call = self.callLater(self.head_timeout, self._head_too_late)

    def _stop_head_clock(self) -> None:
        if self._head_call is not None and self._head_call.active():
            self._head_call.cancel()
        self._head_call = None

    def _head_too_late(self) -> None:
        self._head_call = None
        transport: Any = self.transport
        transport.write(REQUEST_TIMEOUT)
        # Twisted's idle-timeout close: a clean close now, an abort if the client does not
        # take the bytes within abortTimeout.
        self.timeoutConnection()


def limit_head_time(factory: Any, seconds: float) -> None:
    """Make `factory` (a Twisted `HTTPFactory`) give each request head `seconds` to arrive.

    Its `protocol` builds `_GenericHTTPChannelProtocol(HTTPChannel())` (the wrapper
    that would switch to HTTP/2 after ALPN); this builds the same around a
    `HeadDeadlineChannel`. Affects connections accepted from now on.
    """

    def build() -> Any:
        channel = HeadDeadlineChannel()
        channel.head_timeout = seconds
        return http._GenericHTTPChannelProtocol(channel)

    factory.protocol = build
