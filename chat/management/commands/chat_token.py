"""Print one connection token per username, in the order given."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatcluster.services.tokens import token_issue


class Command(BaseCommand):
    help = "Print one WebSocket connection token per USERNAME, one per line, in the order given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="+", metavar="USERNAME")
        parser.add_argument("--create", action="store_true", help="create users that do not exist yet")
        parser.add_argument("--ttl", type=int, default=None, help="token lifetime in seconds (default TOKEN_TTL)")

    def handle(self, *args: Any, usernames: list[str], create: bool, ttl: int | None, **options: Any) -> None:
        if ttl is not None and ttl < 1:
            raise CommandError("--ttl must be at least 1 second")
        User = get_user_model()  # noqa: N806
        users = []
        for name in usernames:
            # The host's user model names its users by its own USERNAME_FIELD.
            user = User.objects.filter(**{User.USERNAME_FIELD: name}).first()
            if user is None:
                if not create:
                    raise CommandError(f"no user named {name!r}; pass --create to make it")
                user = User.objects.create_user(**{User.USERNAME_FIELD: name})  # no password: token-only
            elif not user.is_active:
                raise CommandError(f"user {name!r} is deactivated")
            users.append(user)
        for user in users:
            self.stdout.write(token_issue(user=user, ttl=ttl)[0])
