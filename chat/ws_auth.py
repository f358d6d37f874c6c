"""WebSocket authentication: a `?token=` or the session cookie, plus the Origin check.

The outcome lands in `scope["user"]`, `scope["auth_refusal"]` and `scope["auth_session"]`
(the session key of a cookie socket); the consumer closes
refused sockets with the contract's code, so a client always learns why.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from chatcluster.errors import BACKEND_DOWN, ChatError
from chatcluster.lifecycle import CLOSE_ORIGIN, CLOSE_TRY_AGAIN, CLOSE_UNAUTHENTICATED
from chatcluster.services.tokens import token_user


def origin_allowed(origin: str | None) -> bool:
    """True when the Origin names a host in ALLOWED_HOSTS, on any port."""
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    host, _port = split_domain_port(parts.netloc)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        # What Django's own host check allows in this case (HttpRequest.get_host): a
        # fresh `startproject` works on localhost without configuring anything.
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(host) and validate_host(host, allowed)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _Authenticate:
    """Authenticate a socket by its `?token=`, or else by its session cookie.

    A token socket goes straight to the application: channels' cookie and session
    middleware, their scope copies, session wrapper and coroutine frames would stay on
    every idle socket for nothing (1.5 KB). A cookie socket goes through them.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.with_session = CookieMiddleware(SessionMiddleware(_CookieAuthenticate(inner)))

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if token:
            return self.token_socket(token, scope, receive, send)
        return self.with_session(scope, receive, send)

    async def token_socket(self, token: str, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = await _token_scope(token, scope)
        return await self.inner(scope, receive, send)


async def _token_scope(token: str, scope: dict[str, Any]) -> dict[str, Any]:
    # A token is no ambient credential, so Origin may be absent; a foreign one is still
    # refused, as a browser page elsewhere could have embedded it.
    origin = _header(scope, b"origin")
    user: Any = AnonymousUser()
    refusal: int | None = None
    try:
        user = await database_sync_to_async(token_user)(token=token)
    except ChatError:
        refusal = CLOSE_UNAUTHENTICATED
    except BACKEND_DOWN:
        # The database is away for now: the client backs off and comes back.
        refusal = CLOSE_TRY_AGAIN
    if refusal is None and origin is not None and not origin_allowed(origin):
        refusal = CLOSE_ORIGIN
    return dict(scope, user=user, auth_refusal=refusal, auth_session=None)


class _CookieAuthenticate:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        refusal: int | None = None
        session_key = scope["session"].session_key
        try:
            user = await get_user(scope)
        except BACKEND_DOWN:
            # The session store is away for now: the client backs off and comes back.
            user, refusal = AnonymousUser(), CLOSE_TRY_AGAIN
        else:
            if not user.is_authenticated:
                refusal = CLOSE_UNAUTHENTICATED
            elif not origin_allowed(origin):
                # The cookie rides along on any site's request: only our own pages count.
                refusal = CLOSE_ORIGIN
        # The session that let a cookie socket in: logging out of it closes the socket.
        scope = dict(scope, user=user, auth_refusal=refusal, auth_session=session_key)
        return await self.inner(scope, receive, send)


def WebSocketAuthMiddleware(inner: Any) -> Any:  # noqa: N802 - mirrors channels' *Stack names
    return _Authenticate(inner)
