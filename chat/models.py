from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

# \Z, not $: "$" would let a trailing newline through.
SLUG_PATTERN = r"^[a-z0-9_-]{1,64}\Z"


class Room(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[RegexValidator(SLUG_PATTERN)])
    title = models.CharField(max_length=200, blank=True)
    is_private = models.BooleanField(default=False)
    # A direct conversation (POST /api/dms): private, its members exactly the people in it.
    is_direct = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The seq of the newest message. Raised by one UPDATE inside the transaction that
    # stores the message, so seqs are gapless and never reused.
    last_seq = models.BigIntegerField(default=0, editable=False)
    members: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="chat_rooms"
    )

    class Meta:
        ordering = ["slug"]
        # The live cluster page (/admin/cluster/) lists every node, who is online in every
        # room, private ones included, and Redis internals: more than staff status opens.
        permissions = [("view_cluster", "Can view the live cluster page")]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MODERATOR = "moderator", "Moderator"
        OWNER = "owner", "Owner"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="chatcluster_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} ({self.role})"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Username at send time, so a message renders without a join and survives deletion.
    author_name = models.CharField(max_length=150)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A client-chosen idempotency key: a retried publish finds the first copy by it.
    client_key = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            # Also the index for "messages of room R after seq S" (recovery and history).
            models.UniqueConstraint(fields=["room", "seq"], name="chatcluster_message_seq_unique"),
            models.UniqueConstraint(
                fields=["room", "author", "client_key"],
                condition=models.Q(client_key__isnull=False),
                name="chatcluster_message_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room.slug}#{self.seq}"


class ApiKey(models.Model):
    """A server-side publisher's key. Only its SHA-256 is stored; the key is shown once."""

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="chat_api_keys",
        help_text="Messages published with this key appear under this user's name.",
    )
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ReadMarker(models.Model):
    """How far a user has read a room: the unread count is the room's last_seq minus this.

    Kept apart from Membership on purpose: public rooms have no memberships, and a
    membership's deletion means "access revoked", which reading must never imply.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The highest seq the user has seen in the room; it only ever moves forward.
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "room"], name="chatcluster_readmarker_unique")]

    def __str__(self) -> str:
        return f"{self.user} read {self.room} to #{self.last_read_seq}"
