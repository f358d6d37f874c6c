"""A cluster node: daphne, plus the two things daphne leaves out.

- Send backpressure (daphne#170). daphne writes every frame straight into the socket's
  Twisted buffer, however slowly the client reads. Each WebSocket here registers a push
  producer with its transport; Twisted pauses it when the buffer passes 64 KiB and
  resumes it once drained. The consumer sees this as `scope["extensions"]["chat.flow"]`,
  holds frames while paused, and closes a client that falls `SEND_QUEUE_MAX` frames
  behind.
- A graceful drain. On SIGTERM (or SIGINT) the node answers /readyz with 503 and refuses
  new WebSocket handshakes with HTTP 503 at once (a balancer retries them on another
  node), closes its sockets with 1012 after `DRAIN_GRACE` seconds so their clients
  recover on other nodes, and exits. A second signal exits at once.

Every HTTP response and WebSocket handshake names the node in `X-Chat-Node`, so
operators (and the balancer tests) can see where a sticky session landed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from daphne.server import Server  # installs Twisted's asyncio reactor: import it first
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor as twisted_reactor

from chatcluster import hub, lifecycle, memdebug, metrics
from chatcluster.clientip import PEER_EXTENSION
from chatcluster.conf import chat_settings
from chatcluster.flow import FLOW_EXTENSION, FlowControl
from chatcluster.seams import autobahn, daphne, twisted

logger = logging.getLogger(__name__)
# Twisted's reactor is a module-level singleton that its stubs describe poorly.
reactor: Any = twisted_reactor

# Seconds a drained node gives its own shutdown (leaving the registry, then interpreter
# exit) before it exits outright.
EXIT_WAIT = 3.0
# Seconds to let close handshakes finish after the 1012s go out, before exiting anyway.
CLOSE_WAIT = 2.0
NODE_HEADER = "X-Chat-Node"


class FlowControlledWebSocketProtocol(WebSocketProtocol):
    refused = False
    reading_paused = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803 - daphne's method
        super().onMessage(payload, isBinary)
        # Read backpressure: daphne queues every frame it reads for the app, without bound.
        # A client that sends faster than its consumer handles frames would grow the node,
        # so past WS_INBOX_MAX waiting frames the node stops reading the socket; TCP then
        # pushes back on the client. inbox_taken reads again once half is handled.
        if not self.reading_paused and daphne.inbox_size(self) >= chat_settings.WS_INBOX_MAX:
            self.reading_paused = True
            self.transport.pauseProducing()

    def inbox_taken(self) -> None:
        if self.reading_paused and daphne.inbox_size(self) <= chat_settings.WS_INBOX_MAX // 2:
            self.reading_paused = False
            self.transport.resumeProducing()

    def _sendAutoPing(self) -> None:  # noqa: N802 - autobahn's method, called by daphne's ping check
        if self.state != self.STATE_OPEN or autobahn.compresses(self):
            super()._sendAutoPing()
            return
        autobahn.send_auto_ping(self, lambda frame: twisted.write_now(self.transport, frame))

    def check_timeouts(self) -> None:
        # daphne's periodic check (chat/seams/daphne.py check_timeouts_in_turn), plus the
        # pong timeout that autobahn would arm a timer per ping for.
        if self.state == self.STATE_OPEN and autobahn.auto_pong_overdue(self):
            self.onAutoPingTimeout()
            return
        super().check_timeouts()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's
        # autobahn's own dataReceived formats a debug line for every read, logged or not.
        if self.state == self.STATE_OPEN and autobahn.take_auto_pong(self, data):
            return
        self._dataReceived(data)

    def onConnect(self, request: Any) -> Any:  # noqa: N802
        # A draining node refuses the handshake itself, before any application runs: a
        # 503 is what nginx's `proxy_next_upstream http_503` retries on another node, so
        # a balancer without active health checks still sends no socket here. (Accepting
        # and closing with 1012 would be a success to the balancer and a wasted round
        # trip to the client.)
        if lifecycle.draining():
            self.refused = True
            metrics.CONNECTS.labels("draining").inc()
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "node draining")
        return super().onConnect(request)

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:  # noqa: N802
        # A refused handshake never reached daphne's bookkeeping: nothing to clean up.
        if not self.refused:
            super().onClose(was_clean, code, reason)

    def serverAccept(self, subprotocol: str | None = None) -> None:  # noqa: N802
        daphne.accept(self, subprotocol, {NODE_HEADER: chat_settings.NODE_ID})

    def onOpen(self) -> None:  # noqa: N802
        super().onOpen()
        # An open socket no longer needs its opening handshake (idle memory per socket).
        autobahn.release_handshake(self)
        daphne.release_handshake(self)

    def connectionMade(self) -> None:  # noqa: N802
        with autobahn.without_debug_pformat():
            super().connectionMade()
        self.flow = FlowControl(self)
        # The HTTP channel that read the upgrade request is still the transport's
        # producer; the WebSocket takes its place.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self.flow, True)

    def serverClose(self, code: int | None = None, reason: str = "") -> None:  # noqa: N802
        # autobahn lets an application close only with 1000 or 3000-4999, but our clients
        # act on the protocol's own codes: 1008 flooding, 1012 draining, 1013 try again.
        # A reason says why in words.
        autobahn.send_close(self, lifecycle.CLOSE_NORMAL if code is None else code, reason)

    def handle_reply(self, message: dict[str, Any]) -> None:
        # daphne drops the ASGI close's `reason` (its own method, checked by the daphne seam test).
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.serverClose(code=message.get("code"), reason=message.get("reason") or "")
            return
        super().handle_reply(message)


# daphne checks every connection's timeouts and pings every 2 s; the node checks each
# open socket every few rounds (up to 5, 10 s, and never more than a quarter of
# WS_PING_INTERVAL), so an idle socket costs a fifth of the checks and a ping is late by
# at most that.
def timeout_turns() -> int:
    return max(1, min(5, int(chat_settings.WS_PING_INTERVAL / 8)))


class NodeServer(Server):
    # daphne's own loops (application_checker, timeout_checker) visit every connection;
    # these look only at what needs it.
    checks_due: set[Any]
    interrupt: asyncio.Event
    _timeout_turn = 0
    # Told to stop by SIGINT (Ctrl-C) rather than SIGTERM.
    interrupted = False

    def run(self) -> None:
        self.checks_due = set()
        self.interrupt = asyncio.Event()
        reactor.callWhenRunning(self._on_running)
        super().run()

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.checks_due.add(protocol)

    def application_checker(self) -> None:
        daphne.check_applications(self, self.checks_due)
        reactor.callLater(1, self.application_checker)

    def timeout_checker(self) -> None:
        turns = timeout_turns()
        daphne.check_timeouts_in_turn(self, self._timeout_turn % turns, turns)
        self._timeout_turn = (self._timeout_turn + 1) % turns
        reactor.callLater(2, self.timeout_checker)

    def _on_running(self) -> None:
        # On a protocol error (invalid UTF-8, a frame over WS_MAX_FRAME) send the close
        # code (1007, 1009) before dropping the connection, so the client learns why.
        # (allowNullOrigin is repeated because autobahn resets it on every call; the
        # consumer refuses a null Origin with 4403 itself.)
        factory = daphne.install_protocol(self, FlowControlledWebSocketProtocol, failByDrop=False, allowNullOrigin=True)
        # The options live on the protocol class, not copied into every socket's dict.
        autobahn.share_factory_options(factory, FlowControlledWebSocketProtocol)
        # A request head must arrive within NODE_HEADER_TIMEOUT: Twisted's idle timeout alone
        # lets a client that trickles its head hold a connection for ever (slowloris).
        twisted.limit_head_time(daphne.http_factory(self), chat_settings.NODE_HEADER_TIMEOUT)
        loop = asyncio.get_event_loop()
        logger.info("serving on %s with the %s event loop", self.endpoints, type(loop).__module__)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.on_stop_signal, signum)
        memdebug.start(loop)
        # Join the node registry and start sweeping before the first socket arrives.
        hub.start_in_background()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        # daphne's own method (its signature is checked in tests/chat/seams/test_daphne.py).
        flow = getattr(protocol, "flow", None)
        if flow is not None:
            scope = {**scope, "extensions": {**scope.get("extensions", {}), FLOW_EXTENSION: flow}}
        elif scope["type"] == "http":
            # daphne put X-Forwarded-For's first address, anyone's claim, into `client`; the
            # per-address throttles need the real peer (chat/clientip.py). HTTP only: a
            # socket's scope lives as long as the socket and needs none.
            peer = {PEER_EXTENSION: daphne.peer_host(protocol)}
            scope = {**scope, "extensions": {**scope.get("extensions", {}), **peer}}
        # daphne's method, with an application inbox that costs an idle socket nothing.
        return daphne.start_application(self, protocol, scope)

    def on_stop_signal(self, signum: int = signal.SIGTERM) -> None:
        # SIGTERM (a deployment) waits out DRAIN_GRACE, so that balancers see /readyz
        # fail and send new sockets elsewhere first. SIGINT (Ctrl-C, which runcluster
        # passes to every node at once) waits only while sockets are open: an idle node
        # exits at once, also when the SIGINT comes during a SIGTERM's drain.
        if signum == signal.SIGINT and not self.interrupted:
            self.interrupted = True
            self.interrupt.set()
            if lifecycle.draining():
                logger.info("interrupted while draining: exiting once no socket is open")
                return
        elif lifecycle.draining():
            if signum == signal.SIGTERM and self.interrupted:
                # supervisord's own stop, after runcluster passed Ctrl-C on: the drain runs.
                logger.info("stop signal while draining after an interrupt: the drain goes on")
                return
            logger.warning("second stop signal: exiting without waiting")
            reactor.stop()
            return
        logger.info(
            "draining on %s: closing sockets with %d in %s s",
            signal.Signals(signum).name,
            lifecycle.CLOSE_DRAINING,
            chat_settings.DRAIN_GRACE,
        )
        lifecycle.start_draining()
        metrics.DRAINING.set(1)
        self.drain_task = asyncio.get_event_loop().create_task(self._drain())
        self.drain_task.add_done_callback(lambda _: reactor.running and reactor.stop())

    async def _grace(self) -> None:
        """Wait DRAIN_GRACE, or once interrupted, only until no socket is open."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + chat_settings.DRAIN_GRACE
        if not self.interrupted:
            try:
                async with asyncio.timeout_at(deadline):
                    await self.interrupt.wait()
            except TimeoutError:
                return
        await lifecycle.wait_no_sockets(max(0.0, deadline - loop.time()))

    async def _drain(self) -> None:
        try:
            await self._grace()
            closed = await lifecycle.close_sockets(lifecycle.CLOSE_DRAINING, wait=CLOSE_WAIT)
            logger.info("drained: closed %d sockets; exiting", closed)
            # Leaving the registry is a courtesy (the entry expires anyway): a Redis or
            # task that does not answer must not keep a drained node alive.
            async with asyncio.timeout(EXIT_WAIT):
                await hub.stop_hub()
        except Exception:
            logger.exception("drain failed; exiting anyway")
        finally:
            # The process must end even if a worker thread hangs at interpreter exit
            # (a database call that never returns): supervisord then starts it again.
            # A daemon thread, so that a clean exit does not wait for it.
            timer = threading.Timer(EXIT_WAIT, os._exit, args=(0,))
            timer.daemon = True
            timer.start()


def with_node_header(application: Any) -> Any:
    """Add `X-Chat-Node` to every HTTP response of `application` (an ASGI app)."""
    header = (NODE_HEADER.lower().encode(), chat_settings.NODE_ID.encode())

    def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # A WebSocket gets the application's own coroutine: no frame of ours (and no
        # reference to its scope) stays on every idle socket's task.
        if scope["type"] != "http":
            return application(scope, receive, send)
        return http_app(scope, receive, send)

    async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_named(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await application(scope, receive, send_named)

    return app


def serve(*, application: Any, host: str, port: int) -> None:
    server = NodeServer(
        application=with_node_header(application),
        endpoints=[f"tcp:port={port}:interface={host}:backlog={chat_settings.NODE_BACKLOG}"],
        signal_handlers=False,
        proxy_forwarded_address_header="X-Forwarded-For",
        proxy_forwarded_port_header="X-Forwarded-Port",
        proxy_forwarded_proto_header="X-Forwarded-Proto",
        websocket_max_message_size=chat_settings.WS_MAX_FRAME,
        websocket_max_frame_size=chat_settings.WS_MAX_FRAME,
        ping_interval=chat_settings.WS_PING_INTERVAL,
        ping_timeout=chat_settings.WS_PING_TIMEOUT,
        application_close_timeout=chat_settings.DRAIN_GRACE + CLOSE_WAIT,
        # No maximum socket lifetime (daphne closes after 24 h by default): nodes are
        # rebalanced by draining them, which clients recover from without a gap.
        websocket_timeout=-1,
    )
    server.run()
