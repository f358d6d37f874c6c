from __future__ import annotations

import pytest
from django.test import override_settings

from chatcluster.ws_auth import origin_allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://app.example.com", True),
        ("https://app.example.com:8443", True),
        ("http://app.example.com.evil.com", False),
        ("http://evil.com", False),
        ("null", False),
        (None, False),
        ("", False),
        ("app.example.com", False),
        ("file://app.example.com", False),
    ],
)
def test_origin_must_name_an_allowed_host_on_any_port(origin: str | None, allowed: bool) -> None:
    with override_settings(ALLOWED_HOSTS=["app.example.com"]):
        assert origin_allowed(origin) is allowed
