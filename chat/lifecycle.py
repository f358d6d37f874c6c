"""How this node's sockets end: the close codes, the draining flag, and the local sockets.

Every WebSocket close code the server sends is defined here, once. The numbers are the
contract with clients (docs/protocol.md), which act on them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from chatcluster.services.access import Grant

logger = logging.getLogger(__name__)

# Close codes of a client that meant to go: 1000 normal, 1001 going away (tab closed).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLEAN_CLOSES = frozenset({CLOSE_NORMAL, CLOSE_GOING_AWAY})
# The client broke the rules: CHAT_FLOOD_STRIKES rate-limited frames in a row.
CLOSE_POLICY = 1008
# A bug: something failed that no outage explains. An outage is CLOSE_TRY_AGAIN.
CLOSE_INTERNAL = 1011
# Close code of a draining node: clients reconnect elsewhere and recover with `since`.
CLOSE_DRAINING = 1012
# "Try again later": the node is past CHAT_ADMIT_RATE handshakes (a reconnect storm),
# or Redis or the database did not answer while the socket connected (a transient
# outage). The client backs off with jitter and comes back.
CLOSE_TRY_AGAIN = 1013
REASON_BACKEND_DOWN = "a backing service is not answering, try again"
# The client fell more than SEND_QUEUE_MAX frames behind; it recovers with `since`.
CLOSE_TOO_SLOW = CLOSE_TRY_AGAIN
# No valid credentials, or credentials that no longer hold (logout, deactivation).
CLOSE_UNAUTHENTICATED = 4401
# A cookie socket from a page that is not ours (Origin not in ALLOWED_HOSTS).
CLOSE_ORIGIN = 4403
# The user already holds CHAT_MAX_SOCKETS_PER_USER sockets across the cluster.
CLOSE_TOO_MANY = 4429

# Whether this process was told to stop. It concerns this process alone, so it lives here.
_draining = False


def draining() -> bool:
    """True once this node was told to stop: it takes no new sockets."""
    return _draining


def start_draining() -> None:
    global _draining
    _draining = True


@dataclass(eq=False, slots=True)
class LocalSocket:
    """A socket on this node, as the hub needs to know it to close or trim it."""

    grant: Grant
    # Closes the socket with a close code (draining, access revoked).
    close: Callable[[int], Awaitable[None]]
    # Ends the socket's subscription to a room it may no longer see, saying why.
    evict: Callable[[str, str], Awaitable[None]]
    # Queues a frame for the socket (a notice no subscription carries).
    send: Callable[[str], object]


class LocalSockets:
    """This node's open sockets by connection id, and the ways to end them."""

    def __init__(self) -> None:
        self.by_conn: dict[str, LocalSocket] = {}
        self._none = asyncio.Event()
        self._none.set()

    def __len__(self) -> int:
        return len(self.by_conn)

    def add(self, socket: LocalSocket) -> None:
        self.by_conn[socket.grant.conn] = socket
        self._none.clear()

    def remove(self, conn: str) -> None:
        self.by_conn.pop(conn, None)
        if not self.by_conn:
            self._none.set()

    async def close_all(self, code: int, *, wait: float) -> int:
        """Close every socket with `code`; wait up to `wait` s for them to finish."""
        closers = [socket.close for socket in self.by_conn.values()]
        await asyncio.gather(*(close(code) for close in closers), return_exceptions=True)
        try:
            async with asyncio.timeout(wait):
                await self._none.wait()
        except TimeoutError:
            logger.warning("%d sockets still open after %s s", len(self.by_conn), wait)
        return len(closers)

    async def wait_empty(self, timeout: float) -> bool:
        """Wait up to `timeout` s until no socket is open; True if none is."""
        try:
            async with asyncio.timeout(timeout):
                await self._none.wait()
        except TimeoutError:
            return False
        return True

    async def revoke(self, conns: Iterable[str]) -> None:
        """Close the sockets `conns` whose access was revoked."""
        sockets = [self.by_conn[conn] for conn in conns if conn in self.by_conn]
        if sockets:
            logger.info("closing %d sockets whose access was revoked", len(sockets))
        await asyncio.gather(*(s.close(CLOSE_UNAUTHENTICATED) for s in sockets), return_exceptions=True)

    async def revoke_user(self, user_id: int, session_key: str | None) -> None:
        """Close the sockets of `user_id` (only those of one session if given)."""
        await self.revoke(
            conn
            for conn, socket in self.by_conn.items()
            if socket.grant.user_id == user_id and session_key in (None, socket.grant.session_key)
        )

    async def evict(self, pairs: Iterable[tuple[str, str]], reason: str = "removed") -> None:
        """End each (connection, room) subscription its user may no longer see."""
        evictions = [(self.by_conn[conn], room) for conn, room in pairs if conn in self.by_conn]
        await asyncio.gather(*(socket.evict(room, reason) for socket, room in evictions), return_exceptions=True)

    def notify_user(self, user_id: int, text: str) -> None:
        """Send `text` to every socket of `user_id` on this node."""
        for socket in self.by_conn.values():
            if socket.grant.user_id == user_id:
                socket.send(text)

    async def evict_user(self, user_id: int, room: str, reason: str = "removed") -> None:
        users = ((conn, room) for conn, socket in self.by_conn.items() if socket.grant.user_id == user_id)
        await self.evict(users, reason)


# One registry per event loop, like the hub: test runners bring a loop each.
_sockets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalSockets] = weakref.WeakKeyDictionary()


def local_sockets() -> LocalSockets:
    """The sockets open on this event loop."""
    loop = asyncio.get_running_loop()
    sockets = _sockets.get(loop)
    if sockets is None:
        sockets = _sockets[loop] = LocalSockets()
    return sockets


async def wait_no_sockets(timeout: float) -> bool:
    """Wait up to `timeout` s until this node has no open socket; True if it has none."""
    sockets = _sockets.get(asyncio.get_running_loop())
    return True if sockets is None else await sockets.wait_empty(timeout)


async def close_sockets(code: int, *, wait: float) -> int:
    """Close every socket of this node with `code`; wait up to `wait` s for them to finish."""
    sockets = _sockets.get(asyncio.get_running_loop())
    return 0 if sockets is None else await sockets.close_all(code, wait=wait)
