"""daphne internals: its WebSocket factory, the handshake deferred, the application's scope
and queue, and what an open socket keeps of its handshake.

The node subclasses daphne's `Server` and `WebSocketProtocol`; what it overrides there
(`create_application`, `serverAccept`, `serverClose`, `onConnect`, `onClose`, `onOpen`)
is daphne's own method, not a documented hook, so the signatures are checked in
tests/chat/seams/test_daphne.py. `daphne.server` installs Twisted's asyncio reactor on
import, so this module imports it for type checking only: the seam test imports this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daphne.server import Server

# daphne's own logger, so its messages read as they always did.
logger = logging.getLogger("daphne.server")


def inbox_size(protocol: Any) -> int:
    """Frames daphne read from a socket that its application has not taken yet.

    daphne's `onMessage` puts each into the socket's `application_queue` (the `Inbox`
    below, unbounded like daphne's own queue) and reads on, however far behind the
    application is.
    """
    return int(protocol.application_queue.qsize())


def install_protocol(server: Server, protocol: type, **options: Any) -> Any:
    """Make `server` build its WebSockets from `protocol`, with autobahn protocol `options`.

    daphne builds its `ws_factory` in `run`, so call this once the reactor runs. Returns
    the factory (an autobahn `WebSocketServerFactory`).
    """
    factory: Any = server.ws_factory
    factory.protocol = protocol
    factory.setProtocolOptions(**options)
    return factory


def accept(protocol: Any, subprotocol: str | None, headers: dict[str, str]) -> None:
    """daphne's `serverAccept`, plus extra handshake response `headers`.

    autobahn sends extra handshake headers when `onConnect`'s deferred yields
    (subprotocol, headers); daphne's own `serverAccept` yields only the subprotocol.
    """
    protocol.handshake_deferred.callback((subprotocol, headers))
    del protocol.handshake_deferred


# --- idle memory per socket -----------------------------------------------------------


class OpenedRequest:
    """What daphne reads of the handshake request once open: its path (in its logs)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def release_handshake(protocol: Any) -> None:
    """Drop what daphne keeps of an open socket's handshake for its lifetime (call from onOpen).

    Once open, daphne reads only `request.path` of the autobahn request, so the request
    (with its headers, peer and parameters) becomes an `OpenedRequest`; the raw query
    string goes. The application has authenticated by now (it accepts only after that),
    so the header list the ASGI scope shares with daphne (`clean_headers`) is emptied
    too: `scope["headers"]` is empty once the socket is open.
    """
    headers = getattr(protocol, "clean_headers", None)
    if isinstance(headers, list):
        headers.clear()
    attrs = vars(protocol)
    attrs.pop("clean_headers", None)
    attrs.pop("_raw_query_string", None)
    request = attrs.get("request")
    if request is not None:
        protocol.request = OpenedRequest(request.path)


class Inbox:
    """daphne's per-application `asyncio.Queue`, without an idle cost.

    daphne gives every application an `asyncio.Queue`: three deques (2.2 KB) that an
    idle socket keeps empty. This holds nothing while empty but the one waiting future.
    FIFO and unbounded like daphne's, for a single reader (the application's `receive`);
    daphne itself only calls `put_nowait` (and tests the queue for truth).
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items is not None else 0

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item


def start_application(server: Any, protocol: Any, scope: dict[str, Any]) -> Inbox | None:
    """daphne's `Server.create_application` (4.2.3), with an `Inbox` for its queue.

    Returns what daphne's returns: the application's input queue, or None when the
    connection went away meanwhile.
    """
    assert "application_instance" not in server.connections[protocol]
    inbox = Inbox()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = server.application(
        scope=scope, receive=inbox.get, send=partial(server.handle_reply, protocol)
    )
    if protocol not in server.connections:
        return None
    future = asyncio.ensure_future(application_instance, loop=asyncio.get_event_loop())
    server.connections[protocol]["application_instance"] = future
    # A finished application is one the application checker has to look at.
    due = getattr(server, "checks_due", None)
    if due is not None:
        future.add_done_callback(lambda _: due.add(protocol))
    return inbox


def check_applications(server: Any, due: set[Any]) -> None:
    """daphne 4.2.3's `Server.application_checker` body, over the protocols in `due` only.

    daphne walks every connection every second to find the few whose application finished
    or whose socket closed; the node adds exactly those to `due` (a finished application,
    a disconnect) and this looks at nothing else. A protocol leaves `due` once there is
    nothing more to wait for.
    """
    for protocol in list(due):
        details = server.connections.get(protocol)
        if details is None:
            due.discard(protocol)
            continue
        disconnected = details.get("disconnected", None)
        application_instance = details.get("application_instance", None)
        if disconnected and time.time() - disconnected > server.application_close_timeout:
            if application_instance and not application_instance.done():
                logger.warning(
                    "Application instance %r for connection %s took too long to shut down and was killed.",
                    application_instance,
                    repr(protocol),
                )
                application_instance.cancel()
        if application_instance and application_instance.done():
            try:
                exception = application_instance.exception()
            except asyncio.CancelledError:
                pass
            else:
                if exception:
                    if isinstance(exception, KeyboardInterrupt):
                        server.stop()
                    else:
                        logger.error("Exception inside application: %s", exception, exc_info=exception)
                        if not disconnected:
                            protocol.handle_exception(exception)
            del server.connections[protocol]["application_instance"]
            application_instance = None
        if not application_instance and disconnected:
            del server.connections[protocol]
            due.discard(protocol)
        elif not disconnected and not application_instance:
            due.discard(protocol)  # back in `due` when it disconnects


def check_timeouts_in_turn(server: Any, turn: int, turns: int) -> None:
    """daphne's `Server.timeout_checker` body for one `turns`-th of the connections.

    daphne calls every protocol's `check_timeouts` every 2 s, the largest cost of an idle
    socket; in turns each socket is checked every `turns` rounds. Sockets still in their
    handshake are checked every round, so the connect timeout holds.
    """
    for index, protocol in enumerate(list(server.connections)):
        if index % turns == turn or getattr(protocol, "state", None) != getattr(protocol, "STATE_OPEN", None):
            protocol.check_timeouts()


# --- the real peer, and the HTTP factory ------------------------------------------------


def peer_host(protocol: Any) -> str | None:
    """The address at the other end of an HTTP request's connection (None if not an IP).

    daphne replaces the scope's `client` with X-Forwarded-For's first address, from any
    peer; Twisted's request keeps the connection's own (`Request.client`, the channel's
    `getPeer()`), which daphne's `WebRequest` inherits.
    """
    return getattr(getattr(protocol, "client", None), "host", None)


def http_factory(server: Server) -> Any:
    """daphne's HTTP factory (a Twisted `HTTPFactory`), built in `Server.run`: call once running."""
    return server.http_factory
