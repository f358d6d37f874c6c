"""The HTTP API of rooms a user belongs to: the sidebar, the directory, joining, members, moderation."""

from __future__ import annotations

from typing import Annotated

import msgspec
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chatcluster.api import _caller, _csrf_refusal, _error, _parse, _rooms_page
from chatcluster.errors import ChatError
from chatcluster.models import Room
from chatcluster.services.memberships import (
    room_directory,
    room_join,
    room_joined,
    room_leave,
    room_members,
    user_search,
)
from chatcluster.services.moderation import Moderation, room_moderate
from chatcluster.services.rooms import room_check_slug, room_resolve

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=150)]


class ModerationRequest(msgspec.Struct, forbid_unknown_fields=False):
    action: Annotated[str, msgspec.Meta(max_length=16)]
    user: Name | None = None
    seconds: Annotated[int, msgspec.Meta(ge=0)] | None = None
    role: Annotated[str, msgspec.Meta(max_length=16)] | None = None


def rooms_scoped(request: HttpRequest, scope: str) -> JsonResponse:
    """`GET /api/rooms?scope=joined|public`: the sidebar, or the directory."""
    user = _caller(request)
    if scope == "joined":
        return JsonResponse({"rooms": room_joined(user=user), "next": None})
    if scope == "public":
        query = request.GET.get("q", "").strip()
        if len(query) > 64:
            raise ChatError("bad_request", "q is at most 64 characters")
        rooms, cursor = room_directory(user=user, query=query, **_rooms_page(request))
        return JsonResponse({"rooms": rooms, "next": cursor})
    raise ChatError("bad_request", "scope is joined or public")


def _posted(request: HttpRequest) -> HttpResponse | None:
    return _csrf_refusal(request)


@csrf_exempt  # checked below for cookie sessions; bearer callers carry no ambient credentials
@require_POST
def room_join_view(request: HttpRequest, slug: str) -> HttpResponse:
    if (refused := _posted(request)) is not None:
        return refused
    try:
        room_check_slug(slug=slug)
        membership = room_join(slug=slug, user=_caller(request))
        return JsonResponse({"room": slug, "role": membership.role})
    except ChatError as exc:
        return _error(exc)


@csrf_exempt  # as room_join_view
@require_POST
def room_leave_view(request: HttpRequest, slug: str) -> HttpResponse:
    if (refused := _posted(request)) is not None:
        return refused
    try:
        room_check_slug(slug=slug)
        room_leave(slug=slug, user=_caller(request))
        return JsonResponse({"room": slug})
    except ChatError as exc:
        return _error(exc)


@require_GET
def room_members_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        room_check_slug(slug=slug)
        prefix = request.GET.get("q", "")[:150]
        return JsonResponse(room_members(slug=slug, user=_caller(request), prefix=prefix))
    except ChatError as exc:
        return _error(exc)


@require_GET
def users_view(request: HttpRequest) -> HttpResponse:
    try:
        _caller(request)
        prefix = request.GET.get("q", "").strip()
        if not 1 <= len(prefix) <= 150:
            raise ChatError("bad_request", "q is 1 to 150 characters: the start of a name")
        return JsonResponse({"users": user_search(prefix=prefix)})
    except ChatError as exc:
        return _error(exc)


@csrf_exempt  # as room_join_view
@require_POST
def room_moderation_view(request: HttpRequest, slug: str) -> HttpResponse:
    if (refused := _posted(request)) is not None:
        return refused
    try:
        room_check_slug(slug=slug)
        actor = _caller(request)
        wanted = _parse(request, ModerationRequest)
        room: Room = room_resolve(slug=slug, user=actor)
        moderation = Moderation(action=wanted.action, user=wanted.user, seconds=wanted.seconds, role=wanted.role)
        return JsonResponse(room_moderate(room=room, actor=actor, moderation=moderation))
    except ChatError as exc:
        return _error(exc)
