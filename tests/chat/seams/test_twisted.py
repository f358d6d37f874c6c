"""chat/seams/twisted.py: a TCP transport's write buffers are still where write_now looks, and
the HTTP channel still lets limit_head_time time each request head.

Built on a real `twisted.internet.tcp.Connection` over a socket pair, with a stand-in
reactor so no reactor gets installed in the test process.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from chatcluster.seams.twisted import REQUEST_TIMEOUT, limit_head_time, write_now
from tests.chat.seams.checks import has, params, source_has

NEEDED_BY = "chat/seams/twisted.py write_now (chat/flow.py's direct frame writes)"


class _Reactor:
    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, writer: object) -> None:  # noqa: N802 - Twisted's interface
        self.writers.append(writer)

    def removeWriter(self, writer: object) -> None:  # noqa: N802
        pass


Pair = tuple[tcp.Connection, socket.socket, _Reactor]


@pytest.fixture
def pair() -> Iterator[Pair]:
    ours, theirs = socket.socketpair()
    reactor = _Reactor()
    transport = tcp.Connection(ours, None, reactor)  # type: ignore[arg-type]
    transport.connected = 1
    theirs.settimeout(2)
    yield transport, theirs, reactor
    ours.close()
    theirs.close()


def test_the_transport_still_has_the_buffers_write_now_reads(pair: Pair) -> None:
    transport, _, _ = pair
    for name in ("_tempDataBuffer", "dataBuffer", "offset", "TLS", "disconnecting", "connected", "socket"):
        assert hasattr(transport, name), f"twisted.internet.tcp.Connection.{name} is gone: {NEEDED_BY} needs it"
    assert transport._tempDataBuffer == [], f"twisted's _tempDataBuffer is no longer a list: {NEEDED_BY} needs it"


def test_an_idle_transport_sends_at_once_without_the_reactor(
    pair: Pair,
) -> None:
    transport, theirs, reactor = pair
    write_now(transport, b"frame")
    assert theirs.recv(100) == b"frame"
    assert reactor.writers == []


def test_a_busy_transport_queues_behind_what_waits(pair: Pair) -> None:
    transport, _, reactor = pair
    transport.write(b"first")
    assert transport._tempDataBuffer == [b"first"], f"Twisted's FileDescriptor.write changed: {NEEDED_BY}"
    write_now(transport, b"second")
    assert transport._tempDataBuffer == [b"first", b"second"]
    assert transport in reactor.writers


# --- the request head deadline (limit_head_time, HeadDeadlineChannel) ---------------------

HEAD = "chat/seams/twisted.py HeadDeadlineChannel (NODE_HEADER_TIMEOUT, chat/node.py)"
TIMEOUT = 10.0


class Finishing(http.Request):
    """A request that answers at once, so a kept-alive connection moves on to the next one."""

    def process(self) -> None:
        self.setResponseCode(200)
        self.finish()


def connect(clock: Clock, request_factory: type[http.Request] = http.Request) -> tuple[Any, StringTransport]:
    factory = http.HTTPFactory(reactor=clock)
    limit_head_time(factory, TIMEOUT)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    assert protocol is not None
    protocol.requestFactory = request_factory
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def timed_out(transport: StringTransport) -> bool:
    return bool(transport.disconnecting) and transport.value().startswith(REQUEST_TIMEOUT)


def test_twisted_still_builds_its_http_channel_the_way_limit_head_time_copies() -> None:
    has(http, "_GenericHTTPChannelProtocol", needed_by=HEAD)
    source_has(http._genericHTTPChannelProtocolFactory, "_GenericHTTPChannelProtocol(HTTPChannel())", needed_by=HEAD)
    for name in ("connectionMade", "dataReceived", "allHeadersReceived", "requestDone", "connectionLost"):
        has(http.HTTPChannel, name, needed_by=HEAD)
    params(http.HTTPChannel.requestDone, ["self", "request"], needed_by=HEAD)
    # What requestDone's replay leaves when it holds the start of the next head.
    source_has(http.HTTPChannel.requestDone, "self.setLineMode(data)", needed_by=HEAD)
    source_has(http.HTTPChannel.lineReceived, "self.allHeadersReceived()", needed_by=HEAD)
    source_has(http.HTTPChannel.timeoutConnection, "self.loseConnection()", needed_by=HEAD)
    # Twisted's own timeout is still an idle one, reset by every byte: what a slowloris beats.
    source_has(http.HTTPChannel.dataReceived, "self.resetTimeout()", needed_by=HEAD)


def test_a_head_trickled_a_byte_at_a_time_gets_408_at_the_deadline() -> None:
    clock = Clock()
    protocol, transport = connect(clock)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for _ in range(9):
        clock.advance(1)
        protocol.dataReceived(b"X")  # resets Twisted's idle timeout every time
    assert not transport.disconnecting
    clock.advance(1.01)
    assert timed_out(transport), transport.value()


def test_a_connection_that_sends_nothing_gets_408_at_the_deadline() -> None:
    clock = Clock()
    _, transport = connect(clock)
    clock.advance(TIMEOUT + 0.01)
    assert timed_out(transport)


def test_a_complete_head_stops_the_clock_however_long_the_answer_takes() -> None:
    clock = Clock()
    protocol, transport = connect(clock)  # a plain Request never answers: a long response, or a socket
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.advance(TIMEOUT * 5)
    assert not transport.disconnecting


def test_on_a_kept_alive_connection_the_next_head_is_timed_from_its_first_byte() -> None:
    clock = Clock()
    protocol, transport = connect(clock, Finishing)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in transport.value()
    transport.clear()
    clock.advance(TIMEOUT * 2)  # idle between requests: Twisted's idle timeout (60 s) governs
    assert not transport.disconnecting
    protocol.dataReceived(b"GET /next HTTP/1.1\r\n")
    clock.advance(TIMEOUT + 0.01)
    assert timed_out(transport)


def test_a_pipelined_partial_head_is_timed_too() -> None:
    clock = Clock()
    protocol, transport = connect(clock, Finishing)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHo")
    assert b"200" in transport.value()
    transport.clear()
    clock.advance(TIMEOUT + 0.01)
    assert timed_out(transport)
