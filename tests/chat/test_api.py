from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client, override_settings

from chatcluster.models import Membership, Message, Room
from chatcluster.services.apikeys import apikey_create
from chatcluster.services.messages import message_publish
from chatcluster.services.tokens import token_user

# Committed transactions: the publish endpoint stores through the node's publisher, which
# refreshes its database connection around each batch as a node does.
pytestmark = pytest.mark.django_db(transaction=True)


def post_json(client: Client, url: str, body: object, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def test_token_endpoint_issues_a_token_for_good_credentials() -> None:
    User.objects.create_user("amy", password="correct horse battery")
    response = post_json(Client(), "/api/token", {"username": "amy", "password": "correct horse battery"})
    assert response.status_code == 200
    assert token_user(token=response.json()["token"]).username == "amy"
    assert response.json()["expires_in"] > 0


@pytest.mark.parametrize("body", [{"username": "amy", "password": "wrong"}, {"username": "nobody", "password": "x"}])
def test_token_endpoint_refuses_bad_credentials_with_401(body: dict[str, str]) -> None:
    User.objects.create_user("amy", password="correct horse battery")
    assert post_json(Client(), "/api/token", body).status_code == 401


def test_server_side_publish_with_an_api_key_stores_and_answers_201() -> None:
    _, key = apikey_create(name="ci", user=User.objects.create_user("bot"))
    response = post_json(Client(), "/api/rooms/news/messages", {"body": "deployed"}, Authorization=f"Bearer {key}")
    assert response.status_code == 201 and response.json() == {"seq": 1, "room": "news"}
    assert Message.objects.get(room__slug="news").author_name == "bot"


@pytest.mark.parametrize("auth", ["", "Bearer ck_wrong", "Bearer nonsense"])
def test_server_side_publish_without_a_valid_key_is_401(auth: str) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = post_json(Client(), "/api/rooms/news/messages", {"body": "x"}, **headers)
    assert response.status_code == 401


def test_server_side_publish_to_an_invalid_room_name_is_400() -> None:
    _, key = apikey_create(name="ci", user=User.objects.create_user("bot"))
    response = post_json(Client(), "/api/rooms/Not%20A%20Slug/messages", {"body": "x"}, Authorization=f"Bearer {key}")
    assert response.status_code == 400


def test_history_api_pages_with_a_session() -> None:
    _, key = apikey_create(name="ci", user=User.objects.create_user("bot"))
    for i in range(5):
        post_json(Client(), "/api/rooms/r/messages", {"body": f"m{i}"}, Authorization=f"Bearer {key}")
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    messages = client.get("/api/rooms/r/messages?before=4&limit=2").json()["messages"]
    assert [m["seq"] for m in messages] == [2, 3]
    assert Client().get("/api/rooms/r/messages").status_code == 401


def test_creating_a_room_from_a_session_needs_the_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("maker"))
    assert post_json(client, "/api/rooms", {"slug": "mine", "private": True}).status_code == 403
    client.get("/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = post_json(client, "/api/rooms", {"slug": "mine", "private": True}, X_CSRFToken=token)
    assert response.status_code == 201 and response.json()["private"] is True


def test_health_and_metrics_answer() -> None:
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert b"chat_connections" in client.get("/metrics").content


def test_metrics_answer_only_a_direct_scrape_from_an_allowed_address_or_the_token() -> None:
    client = Client()
    # Through a balancer the address is the client's own claim: refused without the token.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.5")
    assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content
    assert b"chat_" not in refused.content
    with override_settings(CHATCLUSTER=dict(METRICS_TOKEN="scrape-secret")):
        for headers in ({"REMOTE_ADDR": "203.0.113.5"}, {"HTTP_X_FORWARDED_FOR": "203.0.113.5"}):
            assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **headers).status_code == 200
            assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secreT", **headers).status_code == 403
    with override_settings(CHATCLUSTER=dict(METRICS_ALLOW=[ipaddress.ip_network("192.0.2.0/24")])):
        assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
        assert client.get("/metrics").status_code == 403


def test_history_api_keeps_private_rooms_to_members() -> None:
    owner, outsider = User.objects.create_user("owner"), User.objects.create_user("outsider")
    room = Room.objects.create(slug="inner", is_private=True)
    Membership.objects.create(room=room, user=owner)
    member = Client()
    member.force_login(owner)
    assert member.get("/api/rooms/inner/messages").status_code == 200
    stranger = Client()
    stranger.force_login(outsider)
    refused = stranger.get("/api/rooms/inner/messages")
    assert refused.status_code == 403 and "messages" not in refused.json()
    # The same answer as for a room that does not exist would give away nothing more.
    _, key = apikey_create(name="outsider-bot", user=outsider)
    assert Client().get("/api/rooms/inner/messages", headers={"Authorization": f"Bearer {key}"}).status_code == 403


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/accounts/login/", {"username": "x", "password": "y"}),
        ("/accounts/signup/", {"username": "x", "password1": "long-pass-123", "password2": "long-pass-123"}),
        ("/accounts/logout/", {}),
    ],
)
def test_every_form_refuses_a_post_without_the_csrf_token(path: str, data: dict[str, str]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("formuser"))
    assert client.post(path, data).status_code == 403


def test_rooms_api_reports_each_rooms_read_marker() -> None:
    Room.objects.create(slug="a", last_seq=7)
    Room.objects.create(slug="b", last_seq=3)
    client = Client()
    client.force_login(User.objects.create_user("amy"))
    assert post_json(client, "/api/rooms/a/read", {"seq": 5}).json() == {"room": "a", "read": 5}
    rooms = {r["slug"]: r for r in client.get("/api/rooms").json()["rooms"]}
    assert (rooms["a"]["seq"], rooms["a"]["read"]) == (7, 5)
    assert rooms["b"]["read"] is None


def test_read_api_needs_the_csrf_token_with_a_session() -> None:
    Room.objects.create(slug="a", last_seq=7)
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("amy"))
    assert post_json(client, "/api/rooms/a/read", {"seq": 5}).status_code == 403


@pytest.mark.parametrize("body", [{"seq": -1}, {"seq": 8}, {"seq": "5"}, {}])
def test_read_api_refuses_a_bad_seq_with_400(body: dict[str, object]) -> None:
    Room.objects.create(slug="a", last_seq=7)
    client = Client()
    client.force_login(User.objects.create_user("amy"))
    assert post_json(client, "/api/rooms/a/read", body).status_code == 400


def test_read_api_without_credentials_is_401() -> None:
    Room.objects.create(slug="a", last_seq=7)
    assert post_json(Client(), "/api/rooms/a/read", {"seq": 1}).status_code == 401


def test_a_bearer_caller_creates_a_room_and_moves_its_read_marker_without_csrf() -> None:
    _, key = apikey_create(name="ci", user=User.objects.create_user("bot"))
    client = Client(enforce_csrf_checks=True)
    created = post_json(client, "/api/rooms", {"slug": "ops"}, Authorization=f"Bearer {key}")
    assert created.status_code == 201
    post_json(client, "/api/rooms/ops/messages", {"body": "up"}, Authorization=f"Bearer {key}")
    marked = post_json(client, "/api/rooms/ops/read", {"seq": 1}, Authorization=f"Bearer {key}")
    assert marked.json() == {"room": "ops", "read": 1}


async def test_an_http_publish_reaches_sockets_in_order_with_theirs_and_shares_their_rate_limit(chat_conf: Any) -> None:
    # The HTTP publish goes through the node's publish pipeline, like a socket's.
    from django.test import AsyncClient

    from tests.chat.test_consumers import connect, next_of, send

    chat_conf.CHAT_PUBLISH_BURST = 3
    chat_conf.CHAT_PUBLISH_RATE = 0.01
    key = await sync_to_async(_api_key_of)("deployer")
    ws = await connect("deployer")
    await send(ws, type="subscribe", room="ops-feed")
    await next_of(ws, "subscribed")
    await send(ws, type="publish", room="ops-feed", body="from the socket", ref="s")
    assert (await next_of(ws, "ack"))["seq"] == 1
    http = AsyncClient()
    answers = [
        await http.post(
            "/api/rooms/ops-feed/messages",
            json.dumps({"body": f"http {i}"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["error"] == "rate_limited" and int(answers[2]["Retry-After"]) >= 1
    delivered = [await next_of(ws, "message") for _ in range(3)]
    assert [(m["seq"], m["body"]) for m in delivered] == [(1, "from the socket"), (2, "http 0"), (3, "http 1")]
    await ws.disconnect()


def _api_key_of(username: str) -> str:
    user, _ = User.objects.get_or_create(username=username)
    return apikey_create(user=user, name="test")[1]


# --- POST /api/token throttles ----------------------------------------------------------


def ask_token(username: str, password: str, **meta: str):  # type: ignore[no-untyped-def]
    body = json.dumps({"username": username, "password": password})
    return Client().post("/api/token", body, content_type="application/json", **meta)


def test_token_requests_past_an_addresss_budget_get_429_with_retry_after(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_BURST = 3
    chat_conf.CHAT_TOKEN_RATE = 0.01
    User.objects.create_user("amy", password="correct horse battery")
    here = {"REMOTE_ADDR": "203.0.113.7"}
    assert [ask_token("amy", f"guess {i}", **here).status_code for i in range(3)] == [401, 401, 401]
    refused = ask_token("amy", "correct horse battery", **here)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["retry_after"] > 1
    assert int(refused["Retry-After"]) > 90  # a token per 100 s, less what the requests took
    # The budget is the address's own: another one is let in.
    assert ask_token("amy", "correct horse battery", REMOTE_ADDR="203.0.113.8").status_code == 200


def test_a_client_cannot_dodge_its_address_budget_by_writing_x_forwarded_for(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_BURST = 2
    chat_conf.CHAT_TOKEN_RATE = 0.01
    answers = [
        ask_token("nobody", "x", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(4)
    ]
    assert answers == [401, 401, 429, 429]


def test_behind_our_balancer_each_forwarded_client_has_its_own_budget(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_BURST = 1
    chat_conf.CHAT_TOKEN_RATE = 0.01
    balancer = {"REMOTE_ADDR": "10.0.0.2"}
    assert ask_token("nobody", "x", HTTP_X_FORWARDED_FOR="198.51.100.1", **balancer).status_code == 401
    assert ask_token("nobody", "x", HTTP_X_FORWARDED_FOR="198.51.100.1", **balancer).status_code == 429
    # Only the last address counts (the one the balancer wrote); what a client put before it does not.
    spoofed = "192.0.2.1, 198.51.100.1"
    assert ask_token("nobody", "x", HTTP_X_FORWARDED_FOR=spoofed, **balancer).status_code == 429
    assert ask_token("nobody", "x", HTTP_X_FORWARDED_FOR="198.51.100.2", **balancer).status_code == 401


def test_wrong_passwords_lock_the_username_out_from_every_address_right_password_too(chat_conf: Any) -> None:
    chat_conf.CHAT_LOGIN_FAILURES = 3
    User.objects.create_user("amy", password="correct horse battery")
    User.objects.create_user("ben", password="correct horse battery")
    for i in range(3):
        assert ask_token("amy", f"guess {i}", REMOTE_ADDR=f"203.0.113.{i}").status_code == 401
    locked = ask_token("amy", "correct horse battery", REMOTE_ADDR="203.0.113.50")
    assert locked.status_code == 429 and locked.json()["error"] == "rate_limited"
    assert 250 <= int(locked["Retry-After"]) <= 300  # until CHAT_LOGIN_FAILURE_WINDOW after the first
    assert ask_token("ben", "correct horse battery", REMOTE_ADDR="203.0.113.50").status_code == 200


def test_a_right_password_clears_the_usernames_wrong_ones(chat_conf: Any) -> None:
    chat_conf.CHAT_LOGIN_FAILURES = 3
    User.objects.create_user("amy", password="correct horse battery")
    for _ in range(2):
        assert [ask_token("amy", "typo").status_code for _ in range(2)] == [401, 401]
        assert ask_token("amy", "correct horse battery").status_code == 200


# --- GET /api/rooms pages ---------------------------------------------------------------


def listed(client: Client, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/rooms{query}")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def test_the_room_list_comes_in_pages_followed_by_a_cursor_to_the_end() -> None:
    reader, other = User.objects.create_user("reader"), User.objects.create_user("other")
    Room.objects.bulk_create([Room(slug=f"pub-{i:03d}", title=f"Room {i}") for i in range(120)])
    mine = Room.objects.create(slug="pub-050x", is_private=True)
    Membership.objects.create(room=mine, user=reader)
    Room.objects.create(slug="pub-051x", is_private=True, created_by=other)
    client = Client()
    client.force_login(reader)
    page = listed(client)
    assert len(page["rooms"]) == 50 and page["next"] == page["rooms"][-1]["slug"]
    assert set(page["rooms"][0]) == {"slug", "title", "private", "seq", "read"}
    slugs = [room["slug"] for room in page["rooms"]]
    while page["next"] is not None:
        page = listed(client, f"?after={page['next']}")
        slugs += [room["slug"] for room in page["rooms"]]
    expected = sorted([f"pub-{i:03d}" for i in range(120)] + ["pub-050x"])
    assert slugs == expected  # every readable room once, in order; the stranger's private one never


def test_a_room_page_holds_what_limit_asks_up_to_the_cap(chat_conf: Any) -> None:
    chat_conf.CHAT_ROOMS_PAGE_MAX = 30
    Room.objects.bulk_create([Room(slug=f"r-{i:03d}") for i in range(40)])
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    assert len(listed(client, "?limit=3")["rooms"]) == 3
    capped = listed(client, "?limit=1000")
    assert len(capped["rooms"]) == 30 and capped["next"] == "r-029"
    assert listed(client, "?after=r-029&limit=1000") == {"rooms": listed(client, "?after=r-029")["rooms"], "next": None}


def test_the_default_page_is_capped_at_200_rooms() -> None:
    Room.objects.bulk_create([Room(slug=f"r-{i:03d}") for i in range(230)])
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    assert len(listed(client)["rooms"]) == 50
    assert len(listed(client, "?limit=500")["rooms"]) == 200


@pytest.mark.parametrize("query", ["?limit=0", "?limit=-1", "?limit=ten", "?after=Not%20A%20Slug", "?after=a/b"])
def test_a_bad_page_size_or_cursor_is_400(query: str) -> None:
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    answer = client.get(f"/api/rooms{query}")
    assert answer.status_code == 400 and answer.json()["error"] == "bad_request"


def test_dms_answer_the_same_room_for_the_same_people_by_session_or_bearer() -> None:
    ann, bob = User.objects.create_user("ann", password="pw-ann-123"), User.objects.create_user("bob")
    session = Client(enforce_csrf_checks=False)
    session.force_login(ann)
    first = post_json(session, "/api/dms", {"users": ["bob"]})
    assert first.status_code == 200 and first.json()["room"].startswith("dm-")
    bearer = post_json(Client(), "/api/dms", {"users": ["ann"]}, Authorization=f"Bearer {_api_key_of('bob')}")
    assert bearer.json() == first.json()
    assert bob.pk in Room.objects.get(slug=first.json()["room"]).members.values_list("pk", flat=True)


@pytest.mark.parametrize(
    ("body", "status"), [({"users": []}, 400), ({"users": "bob"}, 400), ({"users": ["nobody"]}, 404), ({}, 400)]
)
def test_dms_refuse_bad_input_with_a_clear_status(body: object, status: int) -> None:
    User.objects.create_user("bob")
    response = post_json(Client(), "/api/dms", body, Authorization=f"Bearer {_api_key_of('ann')}")
    assert response.status_code == status and "error" in response.json()


def test_dms_without_credentials_are_401() -> None:
    assert post_json(Client(), "/api/dms", {"users": ["bob"]}).status_code == 401


def test_search_answers_the_callers_readable_messages_newest_first() -> None:
    ann = User.objects.create_user("ann")
    session = Client()
    session.force_login(ann)
    for body in ["hello world", "world peace"]:
        message_publish(slug="talk", author=ann, body=body)
    answer = session.get("/api/search", {"q": "world"})
    assert answer.status_code == 200
    assert [(m["room"], m["seq"], m["body"]) for m in answer.json()["results"]] == [
        ("talk", 2, "world peace"),
        ("talk", 1, "hello world"),
    ]


@pytest.mark.parametrize(
    "params", [{}, {"q": ""}, {"q": "x", "limit": "zero"}, {"q": "x", "limit": "0"}, {"q": "x", "room": "Bad Room"}]
)
def test_search_refuses_bad_parameters_with_400(params: dict[str, str]) -> None:
    session = Client()
    session.force_login(User.objects.create_user("ann"))
    assert session.get("/api/search", params).status_code == 400


def test_search_without_credentials_is_401() -> None:
    assert Client().get("/api/search", {"q": "x"}).status_code == 401
