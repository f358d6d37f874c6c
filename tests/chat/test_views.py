"""The sign-up page: where it sends a new user afterwards, and what its links carry."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-Passphrase-42"
# Where a page sends a new user when `next` is missing or refused (LOGIN_REDIRECT_URL).
HOME = "/"

UNSAFE_NEXT = [
    "https://evil.example",
    "http://evil.example/rooms/general/",
    "//evil.example/rooms/",
    "/\\evil.example",
    "https://testserver.evil.example/",
    "javascript:alert(1)",
    " https://evil.example",
]


def sign_up(client: Client, username: str, query: str = "", **extra: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"/accounts/signup/{query}",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD},
        **extra,
    )


@pytest.mark.parametrize("target", UNSAFE_NEXT)
def test_sign_up_never_follows_a_next_that_leaves_the_site(target: str) -> None:
    response = sign_up(Client(), "newcomer", query="?" + f"next={target}".replace("&", "%26"))
    assert response.status_code == 302
    assert response["Location"] == HOME


@pytest.mark.parametrize("target", UNSAFE_NEXT)
def test_sign_up_never_follows_an_unsafe_next_sent_in_the_form(target: str) -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"username": "formuser", "password1": PASSWORD, "password2": PASSWORD, "next": target},
    )
    assert response["Location"] == HOME


def test_sign_up_follows_a_next_on_this_site() -> None:
    response = sign_up(Client(), "deeplinked", query="?next=/rooms/general/")
    assert response.status_code == 302 and response["Location"] == "/rooms/general/"


def test_an_https_page_does_not_send_a_new_user_to_plain_http_on_the_same_host() -> None:
    response = sign_up(Client(), "secure", query="?next=http://testserver/rooms/general/", secure=True)
    assert response["Location"] == HOME


@pytest.mark.parametrize("target", UNSAFE_NEXT)
def test_the_sign_up_page_does_not_echo_an_unsafe_next_into_its_links(target: str) -> None:
    html = Client().get("/accounts/signup/", {"next": target}).content.decode()
    assert "evil.example" not in html and "javascript:" not in html
    assert 'id="login-link" href="/accounts/login/"' in html


def test_the_sign_up_page_passes_a_safe_next_on_to_sign_in_and_to_its_form() -> None:
    html = Client().get("/accounts/signup/", {"next": "/rooms/general/"}).content.decode()
    assert 'href="/accounts/login/?next=/rooms/general/"' in html
    assert '<input type="hidden" name="next" value="/rooms/general/">' in html
