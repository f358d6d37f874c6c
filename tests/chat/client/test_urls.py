"""The socket's URL: a fresh token per connect, the server's own Origin, no token in logs."""

from __future__ import annotations

import pytest

from chatcluster.client import urls


def test_the_token_is_added_or_replaced_and_other_parameters_are_kept() -> None:
    assert urls.with_token("ws://h:8000/ws/", "t1") == "ws://h:8000/ws/?token=t1"
    assert urls.with_token("ws://h:8000/ws/?a=1&token=old", "t:2") == "ws://h:8000/ws/?a=1&token=t%3A2"
    assert urls.with_token("ws://h:8000/ws/?token=mine", None) == "ws://h:8000/ws/?token=mine"


def test_a_logged_url_holds_no_token() -> None:
    assert urls.without_token("wss://h/ws/?token=secret&a=1") == "wss://h/ws/?a=1"


@pytest.mark.parametrize(
    ("url", "origin"),
    [("ws://127.0.0.1:8000/ws/", "http://127.0.0.1:8000"), ("wss://chat.example/ws/", "https://chat.example")],
)
def test_the_default_origin_is_the_servers_own(url: str, origin: str) -> None:
    assert urls.origin_of(url) == origin


def test_an_http_url_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="ws://host:port/ws/"):
        urls.check("http://127.0.0.1:8000/ws/")
