"""The client address the throttles count: the real peer, or our balancer's word for it."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import RequestFactory

from chatcluster.clientip import PEER_EXTENSION, client_address


def under_node(peer: str, forwarded: str | None = None) -> ASGIRequest:
    """A request as the node hands it over: daphne's `client` is X-Forwarded-For's first address."""
    headers = [(b"host", b"testserver")] + ([(b"x-forwarded-for", forwarded.encode())] if forwarded else [])
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/token",
        "query_string": b"",
        "headers": headers,
        "client": [(forwarded or peer).split(",")[0].strip(), 0],
        "server": ("testserver", 80),
        "extensions": {PEER_EXTENSION: peer},
    }
    return ASGIRequest(scope, io.BytesIO())


def test_a_direct_client_is_counted_by_its_own_address_whatever_header_it_writes() -> None:
    assert client_address(under_node("203.0.113.9")) == "203.0.113.9"
    assert client_address(under_node("203.0.113.9", forwarded="198.51.100.1")) == "203.0.113.9"


def test_behind_a_trusted_balancer_the_last_forwarded_address_counts() -> None:
    assert client_address(under_node("127.0.0.1", forwarded="198.51.100.1")) == "198.51.100.1"
    assert client_address(under_node("10.0.0.2", forwarded="192.0.2.1, 198.51.100.1")) == "198.51.100.1"


def test_a_forwarded_header_that_is_no_address_falls_back_to_the_peer() -> None:
    assert client_address(under_node("10.0.0.2", forwarded="unknown")) == "10.0.0.2"


def test_without_trusted_proxies_the_header_is_never_believed(chat_conf: Any) -> None:
    chat_conf.CHAT_TRUSTED_PROXIES = ""
    assert client_address(under_node("127.0.0.1", forwarded="198.51.100.1")) == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_by_its_ipv4(peer: str, key: str) -> None:
    assert client_address(under_node(peer)) == key


def test_outside_the_node_the_servers_remote_addr_is_the_peer() -> None:
    request = RequestFactory().get("/api/token", REMOTE_ADDR="192.0.2.44", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(request) == "192.0.2.44"
