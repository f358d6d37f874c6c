from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client

pytestmark = pytest.mark.django_db


def csp_directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/", "/healthz", "/api/rooms"])
def test_every_response_carries_a_csp_without_inline_script_and_no_framing(path: str) -> None:
    client = Client()
    client.force_login(User.objects.create_user("csp"))
    response = client.get(path)
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response.headers["Permissions-Policy"]


async def test_async_views_get_the_headers_too() -> None:
    response = await AsyncClient().get("/readyz")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_pages_hold_no_inline_script_or_handler_for_the_csp_to_block() -> None:
    client = Client()
    client.force_login(User.objects.create_user("pages"))
    for path in ["/", "/accounts/login/", "/accounts/signup/"]:
        html = client.get(path, follow=True).content.decode()
        # Data blocks (json_script) are not run, so the CSP has nothing to allow for them.
        assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "javascript:" not in html, path
