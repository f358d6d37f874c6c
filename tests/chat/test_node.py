"""The node's WebSocket pings, on a real node: answered pongs keep a socket, a silent peer is dropped.

The node sends its pings itself and settles their pongs without autobahn's frame parser
(chat/seams/autobahn.py), so this speaks raw frames to check the bytes on the wire.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.cluster import RunningCluster, start_cluster

pytestmark = pytest.mark.cluster

PING_ENV = {"WS_PING_INTERVAL": "1", "WS_PING_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def pinging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    running = start_cluster(tmp_path_factory.mktemp("ping"), nodes=1, env=PING_ENV, balancer="none")
    yield running
    running.stop()


class RawSocket:
    """A WebSocket client at the frame level: it answers pings only when told to."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.pings: list[bytes] = []

    def _exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed by the node")
            data += chunk
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", self._exact(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", self._exact(8))
        return first & 0x0F, self._exact(length)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def next_non_ping(self, *, answer: bool) -> tuple[int, bytes]:
        while True:
            opcode, payload = self.frame()
            if opcode != 0x9:
                return opcode, payload
            self.pings.append(payload)
            if answer:
                self.send(0xA, payload)


def test_a_peer_that_answers_pings_stays_and_a_silent_one_is_dropped(pinging: RunningCluster) -> None:
    (token,) = pinging.tokens("pinger")
    client = RawSocket(pinging.node_port(0), token)
    # Idle (a message from the client counts as a sign of life, so none is sent) but
    # answering every ping, for longer than the ping timeout: the socket stays open.
    client.sock.settimeout(0.5)
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        try:
            client.next_non_ping(answer=True)
        except TimeoutError:
            continue
    client.sock.settimeout(10)
    client.send(0x1, json.dumps({"type": "ping", "ref": "alive"}).encode())
    opcode, payload = client.next_non_ping(answer=True)
    assert opcode == 0x1 and json.loads(payload) == {"type": "pong", "ref": "alive"}
    assert len(client.pings) >= 2, client.pings
    # Each ping carries autobahn's auto-ping payload: 8 bytes of send time, 4 of sequence.
    assert all(len(ping) == 12 for ping in client.pings)
    sequence = [struct.unpack(">QL", ping)[1] for ping in client.pings]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    # Now stay silent: the node drops the peer within the ping interval, timeout and check period.
    silent_from = time.monotonic()
    with pytest.raises((ConnectionError, OSError)):
        while time.monotonic() - silent_from < 15:
            client.next_non_ping(answer=False)
    assert time.monotonic() - silent_from < 12
