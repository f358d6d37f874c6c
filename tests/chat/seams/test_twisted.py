"""chat/seams/twisted.py: a TCP transport's write buffers are still where write_now looks.

Built on a real `twisted.internet.tcp.Connection` over a socket pair, with a stand-in
reactor so no reactor gets installed in the test process.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import tcp

from chatcluster.seams.twisted import write_now

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
