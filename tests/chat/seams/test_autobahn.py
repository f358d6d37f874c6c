"""chat/seams/autobahn.py: prepared frames, the compression flag, sendCloseFrame, how a
protocol takes its options and where the handshake's leftovers are read are still as it assumes."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from autobahn.twisted import websocket as twisted_websocket
from autobahn.websocket.protocol import (
    PreparedMessage,
    WebSocketProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)

from chatcluster.seams.autobahn import HANDSHAKE_ATTRS, frame_bytes, release_handshake, share_factory_options
from tests.chat.seams.checks import has, params, source_has

FRAMES = "chat/seams/autobahn.py frame_bytes (OutFrame.wire in chat/flow.py)"
COMPRESS = "chat/seams/autobahn.py compresses (FlowControl.write in chat/flow.py)"
CLOSE = "chat/seams/autobahn.py send_close (the node's close codes in chat/node.py)"


def test_a_prepared_frame_is_still_the_plain_text_frame() -> None:
    params(PreparedMessage.__init__, ["self", "payload", "isBinary", "applyMask", "doNotCompress"], needed_by=FRAMES)
    has(PreparedMessage(b"x", isBinary=False, applyMask=False, doNotCompress=True), "payloadHybi", needed_by=FRAMES)
    # FIN + text opcode, unmasked length 2, payload.
    assert frame_bytes("hi") == b"\x81\x02hi", f"PreparedMessage.payloadHybi changed shape: {FRAMES}"


def test_the_protocol_still_records_its_compression() -> None:
    source_has(WebSocketProtocol._connectionMade, "self._perMessageCompress = None", needed_by=COMPRESS)


def test_any_close_code_can_still_be_sent() -> None:
    has(WebSocketProtocol, "sendCloseFrame", needed_by=CLOSE)
    params(WebSocketProtocol.sendCloseFrame, ["self", "code", "reasonUtf8", "isReply"], needed_by=CLOSE)


SHARE = "chat/seams/autobahn.py share_factory_options (idle memory per socket, chat/node.py)"
RELEASE = "chat/seams/autobahn.py release_handshake (idle memory per socket, chat/node.py onOpen)"


def test_a_protocol_still_copies_only_the_options_it_lacks() -> None:
    # With the options on the class, _connectionMade copies none into the protocol's dict.
    source_has(WebSocketProtocol._connectionMade, "for configAttr in self.CONFIG_ATTRS:", needed_by=SHARE)
    source_has(WebSocketProtocol._connectionMade, "if not hasattr(self, configAttr):", needed_by=SHARE)
    copy = "setattr(self, configAttr, getattr(self.factory, configAttr))"
    source_has(WebSocketProtocol._connectionMade, copy, needed_by=SHARE)
    has(WebSocketServerProtocol, "CONFIG_ATTRS", needed_by=SHARE)


def test_shared_options_reach_every_protocol_from_its_class() -> None:
    class Protocol(WebSocketServerProtocol):
        pass

    factory = WebSocketServerFactory()
    factory.setProtocolOptions(failByDrop=False, allowNullOrigin=True, autoPingInterval=7)
    share_factory_options(factory, Protocol)
    protocol = Protocol()
    missing = [name for name in Protocol.CONFIG_ATTRS if name not in vars(Protocol)]
    assert not missing, f"autobahn's CONFIG_ATTRS {missing} were not shared: {SHARE}"
    assert (protocol.failByDrop, protocol.allowNullOrigin, protocol.autoPingInterval) == (False, True, 7)
    assert not set(vars(protocol)) & set(Protocol.CONFIG_ATTRS)
    # A function option is the factory's own, not a method bound to the protocol.
    assert protocol.perMessageCompressionAccept is factory.perMessageCompressionAccept


def _server_handshake_readers() -> dict[str, set[str]]:
    """Which methods of autobahn's WebSocketProtocol and WebSocketServerProtocol read each handshake attribute."""
    tree = ast.parse(Path(inspect.getfile(WebSocketProtocol)).read_text())
    readers: dict[str, set[str]] = {name: set() for name in HANDSHAKE_ATTRS}
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name in ("WebSocketProtocol", "WebSocketServerProtocol")):
            continue
        for method in cls.body:
            if not isinstance(method, ast.FunctionDef):
                continue
            for node in ast.walk(method):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                    if node.attr in readers:
                        readers[node.attr].add(f"{cls.name}.{method.name}")
    return readers


def test_the_handshake_attributes_are_still_used_only_while_shaking_hands() -> None:
    handshake = {"WebSocketServerProtocol.processHandshake", "WebSocketServerProtocol.succeedHandshake"}
    for name, readers in _server_handshake_readers().items():
        assert readers, f"autobahn's server protocol no longer sets self.{name}: {RELEASE} releases it for nothing"
        late = readers - handshake
        assert not late, f"autobahn now uses self.{name} in {sorted(late)}, after the handshake: {RELEASE} drops it"
    twisted_adapter = Path(inspect.getfile(twisted_websocket)).read_text()
    for name in HANDSHAKE_ATTRS:
        assert f".{name}" not in twisted_adapter, f"autobahn.twisted.websocket now uses {name}: {RELEASE} drops it"


def test_release_handshake_keeps_everything_else() -> None:
    protocol = WebSocketServerProtocol()
    protocol.state = WebSocketProtocol.STATE_OPEN
    kept = dict(vars(protocol))
    for name in HANDSHAKE_ATTRS:
        setattr(protocol, name, "x")
    release_handshake(protocol)
    assert vars(protocol) == kept


PINGS = (
    "chat/seams/autobahn.py send_auto_ping, take_auto_pong, auto_pong_overdue (the node's cheap pings, chat/node.py)"
)


def test_the_auto_ping_state_is_still_where_the_cheap_pings_keep_it() -> None:
    for fragment in (
        "self.autoPingPendingCall = None",
        "self.autoPingPendingSent = time.time_ns()",
        "self.autoPingPendingSeq += 1",
        'struct.pack(">Q", self.autoPingPendingSent)',
        'struct.pack(">L", self.autoPingPendingSeq)',
    ):
        source_has(WebSocketProtocol._sendAutoPing, fragment, needed_by=PINGS)
    # autobahn still settles a pong by comparing it with autoPingPending (the fallback path).
    source_has(WebSocketProtocol.processControlFrame, "if payload == self.autoPingPending:", needed_by=PINGS)
    source_has(WebSocketProtocol._dataReceived, "self.data += data", needed_by=PINGS)
    source_has(WebSocketProtocol.onAutoPingTimeout, "self.dropConnection(abort=True)", needed_by=PINGS)
    # The adapter's dataReceived only logs and forwards: the node skips the log line.
    source_has(twisted_websocket.WebSocketAdapterProtocol.dataReceived, "self._dataReceived(data)", needed_by=PINGS)


class _Pinged:
    """The auto-ping state of a protocol, as autobahn initialises it."""

    def __init__(self) -> None:
        self.autoPingPendingCall = None
        self.autoPingPendingSent: int | None = None
        self.autoPingPendingSeq = 0
        self.autoPingPending: bytes | None = None
        self.autoPingTimeout = 30
        self.autoPingTimeoutCall = None
        self.data = b""


def _masked_pong(payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    return b"\x8a" + bytes([0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_cheap_ping_is_a_server_ping_frame_and_its_pong_settles_it() -> None:
    from chatcluster.seams.autobahn import auto_pong_overdue, send_auto_ping, take_auto_pong

    protocol, written = _Pinged(), []
    send_auto_ping(protocol, written.append)
    (frame,) = written
    assert frame[:2] == b"\x89\x0c" and frame[2:] == protocol.autoPingPending
    assert not auto_pong_overdue(protocol)
    assert not take_auto_pong(protocol, _masked_pong(b"x" * 12))  # not the pending payload
    assert not take_auto_pong(protocol, _masked_pong(frame[2:]) + b"\x81")  # more than the pong
    assert take_auto_pong(protocol, _masked_pong(frame[2:]))
    assert protocol.autoPingPending is None and not take_auto_pong(protocol, _masked_pong(frame[2:]))
    send_auto_ping(protocol, written.append)
    protocol.autoPingPendingSent -= 31 * 10**9  # sent 31 s ago, timeout 30 s
    assert auto_pong_overdue(protocol)


def test_connection_made_still_pretty_prints_through_the_module_name_the_node_swaps() -> None:
    from autobahn.websocket import protocol as autobahn_protocol

    from chatcluster.seams.autobahn import without_debug_pformat

    needed_by = "chat/seams/autobahn.py without_debug_pformat (chat/node.py connectionMade)"
    has(autobahn_protocol, "pformat", needed_by=needed_by)
    source_has(WebSocketProtocol._connectionMade, "attrs=pformat(configAttrLog)", needed_by=needed_by)
    saved = autobahn_protocol.pformat
    with without_debug_pformat():
        assert autobahn_protocol.pformat([1, 2]) == ""
    assert autobahn_protocol.pformat is saved
