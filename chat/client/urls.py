"""The socket's URL: its token for each connect, its Origin, and its form for logs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def check(url: str) -> str:
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise ValueError(f"the url must be ws:// or wss://, such as ws://host:port/ws/, not {url!r}")
    return url


def origin_of(url: str) -> str:
    """The server's own http(s) origin, which it always allows."""
    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc.rpartition('@')[2]}"


def with_token(url: str, token: str | None) -> str:
    """`url` with `?token=` set to `token` (left as it is without one)."""
    if token is None:
        return url
    return _with_query(url, [("token", token)])


def without_token(url: str) -> str:
    """The URL for logs: a token is a credential."""
    return _with_query(url, [])


def _with_query(url: str, extra: list[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query + extra), parts.fragment))
