"""Direct messages: one private room per set of people, whoever starts it."""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from chatcluster import broadcast
from chatcluster.errors import ChatError
from chatcluster.models import Membership, Room
from chatcluster.policy import room_policy
from chatcluster.services.rooms import room_check_quota

# Others in one conversation besides its starter: a small group, not a channel.
DM_MAX_OTHERS = 8


def dm_slug(*, user_ids: set[int]) -> str:
    """The same slug for the same people, in whatever order and by whichever of them."""
    digest = hashlib.sha256(",".join(str(pk) for pk in sorted(user_ids)).encode()).hexdigest()
    return f"dm-{digest[:24]}"


def dm_open(*, caller: User, usernames: list[str]) -> Room:
    """The direct room of `caller` and `usernames`, made on first use."""
    names = {name for name in usernames if name != caller.get_username()}
    if not 1 <= len(names) <= DM_MAX_OTHERS:
        raise ChatError("bad_request", f"name 1 to {DM_MAX_OTHERS} other people")
    model = get_user_model()
    found = model.objects.filter(**{f"{model.USERNAME_FIELD}__in": names})
    others = [user for user in found if getattr(user, "is_active", True)]
    missing = sorted(names - {user.get_username() for user in others})
    if missing:
        raise ChatError("not_found", f"no such user: {', '.join(missing)}")
    people = [caller, *others]
    slug = dm_slug(user_ids={user.pk for user in people})
    room = Room.objects.filter(slug=slug).first()
    if room is not None:
        return room
    if not room_policy().can_create(user=caller, slug=slug, is_private=True):
        raise ChatError("forbidden", "you may not start a direct conversation")
    room_check_quota(user=caller)
    title = ", ".join(sorted(user.get_username() for user in people))
    try:
        with transaction.atomic():
            room = Room.objects.create(slug=slug, title=title[:200], is_private=True, is_direct=True, created_by=caller)
            Membership.objects.bulk_create([Membership(room=room, user=user) for user in people])
            # bulk_create sends no post_save: tell the others' open pages here.
            for user in others:
                broadcast.after_commit(broadcast.publish_added, user.pk, slug)
    except IntegrityError:  # the same people started it on another node at the same moment
        room = Room.objects.get(slug=slug)
    return room
