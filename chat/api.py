"""The HTTP API: tokens, server-side publishing, history, rooms, health and metrics."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
from typing import Annotated, Any, TypeVar

import msgspec
from asgiref.sync import sync_to_async
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatcluster import lifecycle
from chatcluster.clientip import client_address
from chatcluster.conf import chat_settings
from chatcluster.errors import BACKEND_DOWN, ChatError, unavailable
from chatcluster.hub import hub_problem
from chatcluster.protocol import Slug
from chatcluster.publisher import get_publisher
from chatcluster.redis import all_redis
from chatcluster.services.apikeys import apikey_user
from chatcluster.services.dms import dm_open
from chatcluster.services.history import message_history
from chatcluster.services.logins import login_admit, login_failed, login_succeeded
from chatcluster.services.messages import PublishRequest
from chatcluster.services.reads import read_mark, read_markers
from chatcluster.services.rooms import room_check_slug, room_create, room_page
from chatcluster.services.search import message_search
from chatcluster.services.tokens import token_issue, token_user

logger = logging.getLogger(__name__)


class TokenRequest(msgspec.Struct):
    username: str
    password: str


class PublishBody(msgspec.Struct):
    body: str
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class ReadRequest(msgspec.Struct):
    seq: Annotated[int, msgspec.Meta(ge=0)]


class DirectRequest(msgspec.Struct):
    # Usernames; their number is checked by the service, which words the refusal.
    users: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=150)]], msgspec.Meta(max_length=64)]


class RoomRequest(msgspec.Struct):
    slug: Slug
    title: Annotated[str, msgspec.Meta(max_length=200)] = ""
    private: bool = False


def _error(exc: ChatError) -> JsonResponse:
    body: dict[str, Any] = {"error": exc.code, "detail": exc.detail}
    if exc.retry_after is not None:
        body["retry_after"] = exc.retry_after
    response = JsonResponse(body, status=exc.http_status)
    if exc.retry_after is not None:
        # Whole seconds, rounded up: a client that waits exactly this long is let in.
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


T = TypeVar("T")


def _parse(request: HttpRequest, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(request.body, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ChatError("bad_request", f"JSON body: {exc}") from None


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def _caller(request: HttpRequest) -> User:
    """The session user, or the user behind a bearer connection token or API key."""
    if request.user.is_authenticated:
        return request.user
    bearer = _bearer(request)
    if not bearer:
        raise ChatError("unauthorized", "log in, or send Authorization: Bearer <token>")
    return apikey_user(key=bearer) if bearer.startswith("ck_") else token_user(token=bearer)


@csrf_exempt  # credentials travel in the body, not in a cookie
@require_POST
async def token_view(request: HttpRequest) -> JsonResponse:
    try:
        credentials = _parse(request, TokenRequest)
        # Before any password is checked: a throttled guess costs no hashing and tells nothing.
        await login_admit(address=client_address(request), username=credentials.username)
        user = await sync_to_async(authenticate)(request, username=credentials.username, password=credentials.password)
        if user is None:
            await login_failed(username=credentials.username)
            raise ChatError("unauthorized", "wrong username or password")
        await login_succeeded(username=credentials.username)
        token, ttl = await sync_to_async(token_issue)(user=user)
    except ChatError as exc:
        return _error(exc)
    except BACKEND_DOWN as exc:
        return _error(unavailable(exc))
    return JsonResponse({"token": token, "expires_in": ttl})


def _publish_sync(request: HttpRequest, slug: str) -> tuple[User, PublishBody]:
    bearer = _bearer(request)
    if not bearer:
        raise ChatError("unauthorized", "send Authorization: Bearer <api key>")
    return apikey_user(key=bearer), _parse(request, PublishBody)


@csrf_exempt  # authenticated by the Authorization header only, never by cookie
@require_http_methods(["GET", "POST"])
async def room_messages_view(request: HttpRequest, slug: str) -> JsonResponse:
    try:
        if request.method == "POST":
            author, publish = await sync_to_async(_publish_sync)(request, slug)
            # The sockets' path: rate limit, storage and broadcast in the node's batches.
            posted = await get_publisher().publish(
                PublishRequest(slug=slug, author=author, body=publish.body, key=publish.key)
            )
            return JsonResponse({"seq": posted.seq, "room": posted.room}, status=201 if posted.created else 200)
        return await sync_to_async(_history_sync)(request, slug)
    except ChatError as exc:
        return _error(exc)
    except BACKEND_DOWN as exc:
        return _error(unavailable(exc))


def _history_sync(request: HttpRequest, slug: str) -> JsonResponse:
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
        around = int(request.GET["around"]) if request.GET.get("around") else None
        limit = int(request.GET.get("limit", "50"))
    except ValueError:
        raise ChatError("bad_request", "before, around and limit must be integers") from None
    if (before is not None and before < 0) or (around is not None and around < 0) or limit < 1:
        raise ChatError("bad_request", "before and around must be >= 0 and limit >= 1")
    messages = message_history(slug=slug, user=_caller(request), before=before, limit=limit, around=around)
    return JsonResponse({"messages": messages})


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Django's standard CSRF check for a cookie-session POST; bearer callers skip it."""
    if request.method == "POST" and request.user.is_authenticated:
        return CsrfViewMiddleware(_no_response).process_view(request, _no_response, (), {})
    return None


def _rooms_page(request: HttpRequest) -> dict[str, Any]:
    """`?limit=` (capped at CHAT_ROOMS_PAGE_MAX) and `?after=<slug>`, the cursor of a page."""
    try:
        limit = int(request.GET.get("limit") or chat_settings.CHAT_ROOMS_PAGE)
    except ValueError:
        raise ChatError("bad_request", "limit must be an integer") from None
    if limit < 1:
        raise ChatError("bad_request", "limit must be >= 1")
    after = request.GET.get("after", "")
    if after:
        room_check_slug(slug=after)
    return {"after": after, "limit": min(limit, chat_settings.CHAT_ROOMS_PAGE_MAX)}


@csrf_exempt  # checked below for cookie sessions; bearer callers carry no ambient credentials
@require_http_methods(["GET", "POST"])
def rooms_view(request: HttpRequest) -> HttpResponse:
    refused = _csrf_refusal(request)
    if refused is not None:
        return refused
    try:
        user = _caller(request)
        if request.method == "POST":
            wanted = _parse(request, RoomRequest)
            room = room_create(slug=wanted.slug, title=wanted.title, is_private=wanted.private, creator=user)
            return JsonResponse({"slug": room.slug, "title": room.title, "private": room.is_private}, status=201)
        if scope := request.GET.get("scope"):
            # Imported here: api_rooms is built on this module's helpers.
            from chatcluster.api_rooms import rooms_scoped

            return rooms_scoped(request, scope)
        rooms, cursor = room_page(user=user, **_rooms_page(request))
        read = read_markers(user=user, rooms=rooms)
        listed = [
            {"slug": r.slug, "title": r.title, "private": r.is_private, "seq": r.last_seq, "read": read.get(r.pk)}
            for r in rooms
        ]
        return JsonResponse({"rooms": listed, "next": cursor})
    except ChatError as exc:
        return _error(exc)


@require_GET
def search_view(request: HttpRequest) -> HttpResponse:
    """Messages matching `q` in the rooms the caller may read (or in `room`), newest first."""
    try:
        user = _caller(request)
        try:
            limit = int(request.GET.get("limit", "20"))
        except ValueError:
            raise ChatError("bad_request", "limit must be an integer") from None
        if limit < 1:
            raise ChatError("bad_request", "limit must be at least 1")
        room = request.GET.get("room") or None
        if room is not None:
            room_check_slug(slug=room)
        results = message_search(user=user, query=request.GET.get("q", ""), room=room, limit=limit)
        return JsonResponse({"results": results})
    except ChatError as exc:
        return _error(exc)


@csrf_exempt  # checked below for cookie sessions, as in rooms_view
@require_POST
def dms_view(request: HttpRequest) -> HttpResponse:
    """The direct room of the caller and `users`: the same room for the same people."""
    refused = _csrf_refusal(request)
    if refused is not None:
        return refused
    try:
        wanted = _parse(request, DirectRequest)
        return JsonResponse({"room": dm_open(caller=_caller(request), usernames=wanted.users).slug})
    except ChatError as exc:
        return _error(exc)


@csrf_exempt  # checked below for cookie sessions, as in rooms_view
@require_POST
def room_read_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Move the caller's read marker in `slug` forward: unread counts then agree on every device."""
    refused = _csrf_refusal(request)
    if refused is not None:
        return refused
    try:
        user = _caller(request)
        wanted = _parse(request, ReadRequest)
        return JsonResponse({"room": slug, "read": read_mark(slug=slug, user=user, seq=wanted.seq)})
    except ChatError as exc:
        return _error(exc)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


@require_GET
async def readyz(request: HttpRequest) -> HttpResponse:
    problems = []
    if lifecycle.draining():
        problems.append("draining")
    for shard, client in enumerate(all_redis()):
        try:
            await client.ping()
        except Exception as exc:
            problems.append(f"redis shard {shard}: {type(exc).__name__}")
    if not await sync_to_async(_database_answers)():
        problems.append("database")
    if not problems and (problem := await hub_problem()):
        problems.append(problem)
    if problems:
        return HttpResponse("not ready: " + ", ".join(problems) + "\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "metrics are for operators: scrape a node directly from an address in METRICS_ALLOW, "
            "or send Authorization: Bearer <METRICS_TOKEN>\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def metrics_allowed(request: HttpRequest) -> bool:
    token = chat_settings.METRICS_TOKEN
    if token and hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return True
    # Through a balancer, the address is the forwarded client's, which that client may
    # have written itself: only a direct connection is trusted by address.
    if "X-Forwarded-For" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(address in network for network in chat_settings.METRICS_ALLOW)
