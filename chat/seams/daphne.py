"""daphne internals: its WebSocket factory, the handshake deferred, and the application's scope.

The node subclasses daphne's `Server` and `WebSocketProtocol`; what it overrides there
(`create_application`, `serverAccept`, `serverClose`, `onConnect`, `onClose`) is daphne's
own method, not a documented hook, so the signatures are checked in
tests/chat/seams/test_daphne.py.
"""

from __future__ import annotations

from typing import Any

from daphne.server import Server


def install_protocol(server: Server, protocol: type, **options: Any) -> None:
    """Make `server` build its WebSockets from `protocol`, with autobahn protocol `options`.

    daphne builds its `ws_factory` in `run`, so call this once the reactor runs.
    """
    factory: Any = server.ws_factory
    factory.protocol = protocol
    factory.setProtocolOptions(**options)


def accept(protocol: Any, subprotocol: str | None, headers: dict[str, str]) -> None:
    """daphne's `serverAccept`, plus extra handshake response `headers`.

    autobahn sends extra handshake headers when `onConnect`'s deferred yields
    (subprotocol, headers); daphne's own `serverAccept` yields only the subprotocol.
    """
    protocol.handshake_deferred.callback((subprotocol, headers))
    del protocol.handshake_deferred
