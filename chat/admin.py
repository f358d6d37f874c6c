from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet, Value
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from chatcluster.errors import ChatError
from chatcluster.models import ApiKey, Membership, Message, ModerationAction, Reaction, ReadMarker, Room, Sanction
from chatcluster.services.apikeys import apikey_create
from chatcluster.services.changes import message_delete
from chatcluster.services.moderation import Moderation, room_moderate
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
    list_display = ["slug", "title", "is_private", "is_direct", "slow_seconds", "member_count", "last_seq"]
    list_display += ["created_by", "created_at"]
    list_filter = ["is_private", "is_direct", "created_at"]
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
    actions = ["kick", "ban", "mute"]

    def _moderate(self, request: HttpRequest, queryset: QuerySet[Membership], action: str) -> None:
        done = 0
        for membership in queryset.select_related("room", "user"):
            moderation = Moderation(action=action, user=membership.user.get_username())
            try:
                room_moderate(room=membership.room, actor=request.user, moderation=moderation)  # type: ignore[arg-type]
                done += 1
            except ChatError as exc:
                self.message_user(request, f"{membership}: {exc.detail}", level=messages.ERROR)
        self.message_user(request, f"{action}: {done} done, on every node, and in the moderation log.")

    @admin.action(description="Kick from the room")
    def kick(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._moderate(request, queryset, "kick")

    @admin.action(description="Ban from the room")
    def ban(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._moderate(request, queryset, "ban")

    @admin.action(description="Mute in the room")
    def mute(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._moderate(request, queryset, "mute")


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


# Staff see direct conversations listed; their words only with this permission.
DM_PERMISSION = "chatcluster.view_direct_messages"
HIDDEN = "(a direct message: its text needs the view_direct_messages permission)"


class ReactionInline(admin.TabularInline):
    model = Reaction
    fields = ("emoji", "user_name", "on", "seq")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RecordAdmin(admin.ModelAdmin):
    """A record to read, not to write: nobody adds, rewrites or removes its rows here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(RecordAdmin):
    # The record of what was said. A row removed outright would leave a hole in its room's
    # seq stream: deletion is the action below, which is itself an entry of the stream.

    list_display = ["room", "seq", "kind", "target", "author_name", "short_body", "edited_at", "deleted", "created_at"]
    list_filter = ["kind", "deleted", "room__is_direct", "created_at"]
    search_fields = ["body", "author_name", "room__slug"]
    list_select_related = ["room"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = (
        "room", "seq", "kind", "target", "author_name", "shown_body", "emoji", "reaction_on", "edited_at", "deleted",
        "created_at",
    )  # fmt: skip
    readonly_fields = fields
    inlines = [ReactionInline]
    actions = ["delete_in_stream"]

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        if message.hidden:  # type: ignore[attr-defined]
            return HIDDEN
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    @admin.display(description="body")
    def shown_body(self, message: Message) -> str:
        return HIDDEN if message.hidden else message.body  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        # Whether this viewer may read each row, decided with the request that lists it.
        may_read_dms = request.user.has_perm(DM_PERMISSION)
        hidden = Value(False) if may_read_dms else F("room__is_direct")
        return super().get_queryset(request).annotate(hidden=hidden)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Message], search_term: str) -> Any:
        if search_term and not request.user.has_perm(DM_PERMISSION):
            # A body search must not reveal what a DM says by what it matches.
            queryset = queryset.exclude(room__is_direct=True)
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Delete selected messages (for everyone, in the room's stream)")
    def delete_in_stream(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        done = 0
        for message in queryset.filter(kind=Message.Kind.MESSAGE, deleted=False).select_related("room"):
            message_delete(slug=message.room.slug, user=request.user, target=message.seq)  # type: ignore[arg-type]
            done += 1
        self.message_user(request, f"{done} messages deleted; every client sees it as a delete in the room.")

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if not request.user.is_staff:
            actions.pop("delete_in_stream", None)
        return actions


@admin.register(Sanction)
class SanctionAdmin(admin.ModelAdmin):
    """Bans and mutes in force; adding one here acts on every node as the page's does."""

    list_display = ["room", "user", "kind", "by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["room__slug", USER_SEARCH]
    autocomplete_fields = ["room"]
    raw_id_fields = ["user"]
    readonly_fields = ["by", "created_at"]

    def save_model(self, request: HttpRequest, obj: Sanction, form: Any, change: bool) -> None:
        room_moderate(
            room=obj.room,
            actor=request.user,  # type: ignore[arg-type]
            moderation=Moderation(action=obj.kind, user=obj.user.get_username()),
        )
        saved = Sanction.objects.get(room=obj.room, user=obj.user, kind=obj.kind)
        obj.pk, obj.by, obj.created_at = saved.pk, saved.by, saved.created_at

    def delete_model(self, request: HttpRequest, obj: Sanction) -> None:
        moderation = Moderation(action=f"un{obj.kind}", user=obj.user.get_username())
        room_moderate(room=obj.room, actor=request.user, moderation=moderation)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Sanction]) -> None:
        for sanction in queryset.select_related("room", "user"):
            self.delete_model(request, sanction)


@admin.register(ModerationAction)
class ModerationActionAdmin(RecordAdmin):
    """The moderation log: read only, the record of who did what."""

    list_display = ["created_at", "room", "actor_name", "action", "target_name", "detail"]
    list_filter = ["action", "created_at"]
    search_fields = ["room__slug", "actor_name", "target_name"]
    list_select_related = ["room"]
    date_hierarchy = "created_at"


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
