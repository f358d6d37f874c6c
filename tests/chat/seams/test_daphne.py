"""chat/seams/daphne.py and chat/node.py: the daphne methods the node overrides are still the same.

`daphne.server` installs Twisted's asyncio reactor on import, so its `Server` (and its
HTTP protocol) are read from source here rather than imported into the test process.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
from pathlib import Path
from typing import Any

from daphne.ws_protocol import WebSocketProtocol

from chatcluster.seams.daphne import Inbox, OpenedRequest, release_handshake, start_application
from tests.chat.seams.checks import params, source_has

NODE = "chat/node.py"
ACCEPT = "chat/seams/daphne.py accept (the X-Chat-Node handshake header)"
START = "chat/seams/daphne.py start_application (a copy of it, with an Inbox for its queue; chat/node.py)"
RELEASE = "chat/seams/daphne.py release_handshake (idle memory per socket, chat/node.py onOpen)"
INBOX = "chat/seams/daphne.py Inbox (stands in for daphne's asyncio.Queue per application)"


def _module(name: str) -> ast.Module:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    return ast.parse(Path(spec.origin).read_text())


def _class(module: str, name: str) -> ast.ClassDef:
    return next(node for node in _module(module).body if isinstance(node, ast.ClassDef) and node.name == name)


def _server_class() -> ast.ClassDef:
    return _class("daphne.server", "Server")


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    found = [node for node in cls.body if isinstance(node, kinds) and node.name == name]
    assert found, f"daphne's {cls.name}.{name} is gone: {NODE} overrides or calls it"
    return found[0]


def _self_attributes(tree: ast.AST, owner: str = "self") -> list[ast.Attribute]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == owner
    ]


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
    # Read backpressure counts what onMessage queued, after daphne's own onMessage ran.
    params(WebSocketProtocol.onMessage, ["self", "payload", "isBinary"], needed_by=NODE)
    source_has(WebSocketProtocol.onMessage, "self.application_queue.put_nowait(", needed_by=NODE)


def test_server_accept_is_still_what_accept_copies() -> None:
    # If daphne's serverAccept learns more than this, copy it into chat/seams/daphne.py accept.
    source_has(WebSocketProtocol.serverAccept, "self.handshake_deferred.callback(subprotocol)", needed_by=ACCEPT)
    source_has(WebSocketProtocol.serverAccept, "del self.handshake_deferred", needed_by=ACCEPT)


# --- idle memory per socket: the copy of create_application, the inbox, the handshake ---

# daphne 4.2.3's Server.create_application, docstring left out: start_application copies it.
CREATE_APPLICATION = "\n".join(
    [
        "assert 'application_instance' not in self.connections[protocol]",
        "input_queue = asyncio.Queue()",
        "scope.setdefault('asgi', {'version': '3.0'})",
        "application_instance = self.application(scope=scope, receive=input_queue.get, "
        "send=partial(self.handle_reply, protocol))",
        "if protocol not in self.connections:",
        "    return None",
        "self.connections[protocol]['application_instance'] = asyncio.ensure_future(application_instance, "
        "loop=asyncio.get_event_loop())",
        "return input_queue",
    ]
)


def test_create_application_is_still_what_start_application_copies() -> None:
    method = _method(_server_class(), "create_application")
    body = [s for s in method.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    assert ast.unparse(body) == CREATE_APPLICATION, (
        f"daphne.server.Server.create_application changed: copy it again into {START}:\n{ast.unparse(body)}"
    )


def test_the_server_attributes_start_application_uses_are_still_there() -> None:
    server = _server_class()
    assigned = {node.attr for node in _self_attributes(_method(server, "__init__")) if isinstance(node.ctx, ast.Store)}
    assert "application" in assigned, f"daphne.server.Server no longer sets self.application: {START} needs it"
    assigned |= {node.attr for node in _self_attributes(_method(server, "run")) if isinstance(node.ctx, ast.Store)}
    assert "connections" in assigned, f"daphne.server.Server no longer sets self.connections: {START} needs it"
    args = [arg.arg for arg in _method(server, "handle_reply").args.args]
    assert args == ["self", "protocol", "message"], (
        f"daphne.server.Server.handle_reply now takes ({', '.join(args)}): {START} passes it (protocol, message)"
    )


def test_daphne_still_only_puts_into_the_application_queue() -> None:
    # The Inbox has put_nowait and get; daphne's protocols may call nothing else on it.
    for module in ("daphne.ws_protocol", "daphne.http_protocol"):
        calls = {
            node.attr
            for node in ast.walk(_module(module))
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "application_queue"
        }
        assert calls <= {"put_nowait"}, f"{module} now calls application_queue.{sorted(calls)}: {INBOX} lacks them"


def test_the_handshake_leftovers_are_still_where_release_handshake_looks() -> None:
    protocol = _class("daphne.ws_protocol", "WebSocketProtocol")
    on_connect = _method(protocol, "onConnect")
    source_has(WebSocketProtocol.onConnect, "self.request = request", needed_by=RELEASE)
    source_has(WebSocketProtocol.onConnect, "self.clean_headers = []", needed_by=RELEASE)
    source_has(WebSocketProtocol.onConnect, '"headers": self.clean_headers', needed_by=RELEASE)
    source_has(WebSocketProtocol.onConnect, '"query_string": self._raw_query_string', needed_by=RELEASE)
    http = _class("daphne.http_protocol", "WebRequest")
    assert "protocol._raw_query_string =" in ast.unparse(http), (
        f"daphne.http_protocol.WebRequest no longer hands the WebSocket _raw_query_string: {RELEASE}"
    )
    params(WebSocketProtocol.onOpen, ["self"], needed_by=RELEASE)
    for method in protocol.body:
        if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef) or method is on_connect:
            continue
        for node in _self_attributes(method):
            assert node.attr not in ("clean_headers", "_raw_query_string"), (
                f"daphne's WebSocketProtocol.{method.name} now reads self.{node.attr} after the handshake: "
                f"{RELEASE} drops it"
            )
        request_reads = {
            outer.attr
            for outer in ast.walk(method)
            if isinstance(outer, ast.Attribute)
            and isinstance(outer.value, ast.Attribute)
            and outer.value.attr == "request"
            and isinstance(outer.value.value, ast.Name)
            and outer.value.value.id == "self"
        }
        assert request_reads <= {"path"}, (
            f"daphne's WebSocketProtocol.{method.name} now reads self.request.{sorted(request_reads)}: "
            f"{RELEASE} keeps only request.path (OpenedRequest)"
        )


def test_release_handshake_keeps_the_path_and_empties_the_scope_headers() -> None:
    class Request:
        path = "/ws/"
        headers = {"cookie": "x"}

    class Protocol:
        pass

    protocol: Any = Protocol()
    headers = [(b"cookie", b"x")]
    protocol.request, protocol.clean_headers, protocol._raw_query_string = Request(), headers, b"token=t"
    protocol.path = b"/ws/"
    release_handshake(protocol)
    assert isinstance(protocol.request, OpenedRequest) and protocol.request.path == "/ws/"
    assert headers == [] and vars(protocol).keys() == {"request", "path"}


async def test_the_inbox_is_a_fifo_that_wakes_its_reader() -> None:
    inbox = Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait(3)
    assert await asyncio.wait_for(reader, 1) == 3
    assert inbox._items is None and inbox._waiter is None


async def test_start_application_runs_the_app_on_an_inbox() -> None:
    got: list[Any] = []

    class Server:
        def __init__(self) -> None:
            self.connections: dict[Any, dict[str, Any]] = {}

        async def application(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            got.append((scope["asgi"], await receive()))
            await send({"type": "websocket.accept"})

        async def handle_reply(self, protocol: Any, message: dict[str, Any]) -> None:
            got.append((protocol, message))

    server, protocol = Server(), object()
    server.connections[protocol] = {}
    inbox = start_application(server, protocol, {"type": "websocket"})
    assert isinstance(inbox, Inbox)
    inbox.put_nowait({"type": "websocket.connect"})
    await asyncio.wait_for(server.connections[protocol]["application_instance"], 1)
    assert got == [({"version": "3.0"}, {"type": "websocket.connect"}), (protocol, {"type": "websocket.accept"})]


CHECKS = "chat/seams/daphne.py check_applications and check_timeouts_in_turn (an idle socket's upkeep, chat/node.py)"
# Digests of daphne 4.2.3's method bodies that the node's checkers copy or replace.
CHECKER_BODIES = {
    "application_checker": "0784b57bb80fbe7d",
    "timeout_checker": "2f4ee97839010a90",
    "protocol_disconnected": "5b7d754c2aa50f04",
}


def test_the_periodic_checkers_the_node_replaces_are_unchanged() -> None:
    import hashlib

    for name, digest in CHECKER_BODIES.items():
        method = _method(_server_class(), name)
        body = [s for s in method.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        found = hashlib.sha256(ast.unparse(body).encode()).hexdigest()[:16]
        assert found == digest, (
            f"daphne.server.Server.{name} changed (body digest {found}): bring {CHECKS} up to date:\n"
            f"{ast.unparse(body)}"
        )
    run = ast.unparse(_method(_server_class(), "run"))
    for call in ("reactor.callLater(1, self.application_checker)", "reactor.callLater(2, self.timeout_checker)"):
        assert call in run, f"daphne.server.Server.run no longer schedules {call!r}: {CHECKS} rely on it"


def test_check_applications_reaps_only_what_is_due() -> None:
    from chatcluster.seams.daphne import check_applications

    class Protocol:
        def handle_exception(self, exc: BaseException) -> None:
            raise AssertionError(exc)

    loop = asyncio.new_event_loop()
    try:
        finished, running = loop.create_future(), loop.create_future()
        finished.set_result(None)
        gone, idle, busy = Protocol(), Protocol(), Protocol()

        class Server:
            application_close_timeout = 10
            connections: dict[Any, dict[str, Any]] = {
                gone: {"disconnected": 1.0, "application_instance": finished},
                idle: {"application_instance": running},
                busy: {"application_instance": running},
            }

        due = {gone, busy}
        check_applications(Server, due)
        # The disconnected one is reaped; the running ones stay, only `busy` was looked at.
        assert set(Server.connections) == {idle, busy} and due == {busy}
    finally:
        loop.close()


async def test_the_inbox_counts_what_waits_for_the_reader() -> None:
    inbox = Inbox()
    assert inbox.qsize() == 0
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert inbox.qsize() == 2
    await inbox.get()
    assert inbox.qsize() == 1
