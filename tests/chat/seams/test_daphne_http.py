"""chat/seams/daphne.py's HTTP side: the real peer of a request, and daphne's HTTP factory.

Read from source, as in test_daphne.py: `daphne.server` installs Twisted's asyncio reactor on import.
"""

from __future__ import annotations

import ast

from tests.chat.seams.checks import source_has
from tests.chat.seams.test_daphne import _class, _method, _server_class

# --- the real peer of an HTTP request, and the HTTP factory ------------------------------

PEER = "chat/seams/daphne.py peer_host (the per-address throttles' real peer, chat/clientip.py)"
HTTP_FACTORY = "chat/seams/daphne.py http_factory (the request head deadline, chat/node.py)"


def test_the_server_still_builds_http_factory_in_run() -> None:
    assert "self.http_factory = HTTPFactory(self)" in ast.unparse(_method(_server_class(), "run")), (
        f"daphne.server.Server.run no longer sets self.http_factory = HTTPFactory(self): {HTTP_FACTORY} needs it"
    )
    http = _class("daphne.http_protocol", "HTTPFactory")
    assert any(isinstance(base, ast.Attribute) and base.attr == "HTTPFactory" for base in http.bases), (
        f"daphne's HTTPFactory is no longer a Twisted http.HTTPFactory: {HTTP_FACTORY} replaces its protocol"
    )
    source = ast.unparse(_method(http, "buildProtocol"))
    assert "http.HTTPFactory.buildProtocol(self, addr)" in source, (
        f"daphne's HTTPFactory.buildProtocol no longer builds through Twisted's: {HTTP_FACTORY} relies on it"
    )


def test_the_request_still_keeps_its_peer_where_peer_host_reads_it() -> None:
    from daphne.utils import parse_x_forwarded_for
    from twisted.web.http import Request

    source_has(Request.__init__, "self.client = self.channel.getPeer()", needed_by=PEER)
    web_request = ast.unparse(_class("daphne.http_protocol", "WebRequest"))
    assert "self.client_addr = [str(self.client.host), self.client.port]" in web_request, (
        f"daphne's WebRequest no longer takes its address from self.client: {PEER}"
    )
    # Why the seam exists: daphne believes the header's first address, from any peer.
    source_has(parse_x_forwarded_for, 'address_value.split(",")[0]', needed_by=PEER)


def test_peer_host_reads_the_connections_own_address() -> None:
    from twisted.internet.address import IPv4Address

    from chatcluster.seams.daphne import peer_host

    class Request:
        client = IPv4Address("TCP", "10.0.0.2", 4711)
        client_addr = ["198.51.100.1", 0]  # what daphne made of X-Forwarded-For

    assert peer_host(Request()) == "10.0.0.2"
    assert peer_host(object()) is None
