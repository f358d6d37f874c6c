from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from chatcluster.models import ApiKey, Membership, Message, ReadMarker, Room
from chatcluster.services.apikeys import apikey_create
from chatcluster.services.nodes import NodeInfo, node_list, node_redis_figures, node_room_presence

# The host's user model names its users by its own field (AUTH_USER_MODEL).
USER_SEARCH = f"user__{get_user_model().USERNAME_FIELD}"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    # A raw id, not an autocomplete: that needs the host's user model in the admin.
    raw_id_fields = ["user"]
    readonly_fields = ["joined_at"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "is_private", "member_count", "last_seq", "created_by", "created_at"]
    list_filter = ["is_private", "created_at"]
    search_fields = ["slug", "title"]
    readonly_fields = ["last_seq", "created_at"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, room: Room) -> int:
        return room.memberships.count()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["room", "user", "role", "joined_at"]
    list_filter = ["role", "room__is_private"]
    search_fields = ["room__slug", USER_SEARCH]
    autocomplete_fields = ["room"]
    raw_id_fields = ["user"]


@admin.register(ReadMarker)
class ReadMarkerAdmin(admin.ModelAdmin):
    """Where a user's unread counts come from, for answering "why does it say 12 unread"."""

    list_display = ["user", "room", "last_read_seq", "room_last_seq", "unread"]
    search_fields = [USER_SEARCH, "room__slug"]
    list_select_related = ["user", "room"]
    readonly_fields = ["user", "room", "last_read_seq"]

    @admin.display(description="room's last seq")
    def room_last_seq(self, marker: ReadMarker) -> int:
        return marker.room.last_seq

    @admin.display(description="unread")
    def unread(self, marker: ReadMarker) -> int:
        return max(0, marker.room.last_seq - marker.last_read_seq)

    # Markers only move forward, from the user's own reads; editing one by hand would
    # make a client's unread count jump backwards.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ReadMarker | None = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["room", "seq", "author_name", "short_body", "created_at"]
    list_filter = ["room", "created_at"]
    search_fields = ["body", "author_name", "room__slug"]
    list_select_related = ["room"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    # The record of what was said: operators read it, nobody rewrites it here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix", USER_SEARCH]
    # A raw id, not an autocomplete: that needs the host's user model in the admin.
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["deactivate"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        row, key = apikey_create(name=obj.name, user=obj.user)
        obj.pk, obj.prefix, obj.key_hash = row.pk, row.prefix, row.key_hash
        messages.warning(request, f"The new key is {key} — copy it now, it is not shown again.")

    @admin.action(description="Deactivate selected keys")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        queryset.update(is_active=False)


async def _cluster_figures() -> tuple[list[NodeInfo], dict[str, list[str]], dict[str, object]]:
    return await node_list(), await node_room_presence(), await node_redis_figures()


# Staff status opens the admin; this page shows every room's online users, private rooms
# included, and the cluster's internals, so it needs its own permission (superusers have it).
CLUSTER_PERMISSION = "chatcluster.view_cluster"


def cluster_view(request: HttpRequest) -> HttpResponse:
    """The live cluster for operators: nodes, who is online where, and Redis pub/sub."""
    if not request.user.has_perm(CLUSTER_PERMISSION):
        raise PermissionDenied(f"the cluster page needs the {CLUSTER_PERMISSION} permission")
    nodes, presence, redis_figures = async_to_sync(_cluster_figures)()
    now = time.time()
    context = {
        **admin.site.each_context(request),
        "title": "Cluster",
        "nodes": [dict(vars(n), up=now - n.started_at, age=now - n.heartbeat_at) for n in nodes],
        "presence": presence,
        "redis": redis_figures,
    }
    return TemplateResponse(request, "chatcluster/admin/cluster.html", context)
