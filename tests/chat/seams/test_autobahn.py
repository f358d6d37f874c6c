"""chat/seams/autobahn.py: prepared frames, the compression flag and sendCloseFrame are still there."""

from __future__ import annotations

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol

from chat.seams.autobahn import frame_bytes
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
