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
    # Slow mode: a member's publishes at least this many seconds apart (moderators exempt).
    slow_seconds = models.PositiveIntegerField(default=0, db_default=0)
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
    """An entry of a room's seq stream: a message, or a change to one (edit, delete, react).

    A change is a row of its own, under the next seq, so recovery and gap repair replay it
    like a message. The target message also holds its final state (body, edited_at,
    deleted, its reactions) so history reads it in one pass.
    """

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        EDIT = "edit", "Edit"
        DELETE = "delete", "Delete"
        REACT = "react", "Reaction"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Username at send time, so a message renders without a join and survives deletion.
    author_name = models.CharField(max_length=150)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    # A client-chosen idempotency key: a retried publish finds the first copy by it.
    client_key = models.CharField(max_length=64, null=True, blank=True)
    # Database defaults too: the publish path inserts rows in plain SQL without these columns.
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MESSAGE, db_default=Kind.MESSAGE)
    # For a change: the seq of the message it changes.
    target = models.BigIntegerField(null=True, blank=True)
    # For a reaction: the emoji, and whether it was added (True) or taken back.
    emoji = models.CharField(max_length=64, blank=True, default="", db_default="")
    reaction_on = models.BooleanField(null=True, blank=True)
    # A message's final state.
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["room", "seq"]
        # Staff see DMs listed in the admin, their bodies only with this permission.
        permissions = [("view_direct_messages", "Can read the bodies of direct messages")]
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


class Reaction(models.Model):
    """A user's emoji on a message; kept when taken back (on=False) so a repeat acks the same seq."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_name = models.CharField(max_length=150)
    emoji = models.CharField(max_length=64)
    on = models.BooleanField(default=True)
    # The seq of the event that set this state.
    seq = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="chatcluster_reaction_unique")]

    def __str__(self) -> str:
        return f"{self.user_name} {self.emoji} on {self.message}"


class Mention(models.Model):
    """`@user` in a message the user may read: counted apart from unread until read past."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "room", "seq"], name="chatcluster_mention_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}#{self.seq}"


class Sanction(models.Model):
    """A ban (no reading, no subscribing) or a mute (no publishing) of a user in a room."""

    class Kind(models.TextChoices):
        BAN = "ban", "Ban"
        MUTE = "mute", "Mute"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sanctions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sanctions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user", "kind"], name="chatcluster_sanction_unique")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.user} in {self.room}"


class ModerationAction(models.Model):
    """The moderation log: who did what to whom, where and when."""

    class Action(models.TextChoices):
        KICK = "kick", "Kick"
        BAN = "ban", "Ban"
        UNBAN = "unban", "Unban"
        MUTE = "mute", "Mute"
        UNMUTE = "unmute", "Unmute"
        SLOW = "slow", "Slow mode"
        DELETE = "delete", "Delete a message"
        ROLE = "role", "Change a role"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="moderation_log")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=8, choices=Action.choices)
    target_name = models.CharField(max_length=150, blank=True)
    # Slow mode's seconds, a deleted message's seq, or a role: what the action set.
    detail = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_name} in {self.room}"


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
