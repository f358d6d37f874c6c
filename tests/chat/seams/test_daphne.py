"""chat/seams/daphne.py and chat/node.py: the daphne methods the node overrides are still the same.

`daphne.server` installs Twisted's asyncio reactor on import, so its `Server` is read
from source here rather than imported into the test process.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from daphne.ws_protocol import WebSocketProtocol

from tests.chat.seams.checks import params, source_has

NODE = "chat/node.py"
ACCEPT = "chat/seams/daphne.py accept (the X-Chat-Node handshake header)"


def _server_class() -> ast.ClassDef:
    spec = importlib.util.find_spec("daphne.server")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Server")


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    found = [node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == name]
    assert found, f"daphne.server.Server.{name} is gone: {NODE} overrides or calls it"
    return found[0]


def test_the_server_still_builds_ws_factory_in_run() -> None:
    run = _method(_server_class(), "run")
    assert "self.ws_factory = " in ast.unparse(run), (
        "daphne.server.Server.run no longer sets self.ws_factory: chat/seams/daphne.py install_protocol needs it"
    )
    assert "setProtocolOptions" in ast.unparse(run)


def test_create_application_still_takes_the_protocol_and_scope() -> None:
    args = [arg.arg for arg in _method(_server_class(), "create_application").args.args]
    assert args == ["self", "protocol", "scope"], (
        f"daphne.server.Server.create_application now takes ({', '.join(args)}): "
        f"{NODE} overrides it to hand the app the socket's FlowControl"
    )


def test_the_websocket_protocol_methods_the_node_overrides_are_unchanged() -> None:
    params(WebSocketProtocol.onConnect, ["self", "request"], needed_by=NODE)
    params(WebSocketProtocol.onClose, ["self", "wasClean", "code", "reason"], needed_by=NODE)
    params(WebSocketProtocol.serverAccept, ["self", "subprotocol"], needed_by=NODE)
    params(WebSocketProtocol.serverClose, ["self", "code"], needed_by=NODE)
    params(WebSocketProtocol.handle_reply, ["self", "message"], needed_by=NODE)
    # The node passes the close's reason on itself, for this branch of handle_reply only.
    source_has(WebSocketProtocol.handle_reply, 'self.serverClose(code=message.get("code", None))', needed_by=NODE)
    source_has(WebSocketProtocol.onConnect, "self.handshake_deferred = defer.Deferred()", needed_by=ACCEPT)


def test_server_accept_is_still_what_accept_copies() -> None:
    # If daphne's serverAccept learns more than this, copy it into chat/seams/daphne.py accept.
    source_has(WebSocketProtocol.serverAccept, "self.handshake_deferred.callback(subprotocol)", needed_by=ACCEPT)
    source_has(WebSocketProtocol.serverAccept, "del self.handshake_deferred", needed_by=ACCEPT)
