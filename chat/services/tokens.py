"""Connection tokens: signed, expiring, bound to the user; no database row per token."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.db import connection

from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError

SALT = "chat.connection-token"


def _binding(user: User) -> str:
    # Part of the session auth hash: a password change invalidates every token.
    return user.get_session_auth_hash()[:16]


def token_issue(*, user: User, ttl: int | None = None) -> tuple[str, int]:
    """A token for `user` and its lifetime in seconds."""
    lifetime = int(ttl if ttl is not None else chat_settings.TOKEN_TTL)
    payload = {"u": user.pk, "b": _binding(user), "e": int(time.time()) + lifetime}
    return signing.dumps(payload, salt=SALT, compress=False), lifetime


def token_user(*, token: str) -> User:
    """The active user a token names; `ChatError("unauthorized")` for anything else."""
    try:
        payload = signing.loads(token, salt=SALT)
        user_id, binding, expires = payload["u"], payload["b"], int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ChatError("unauthorized", "token is not valid") from None
    if expires < time.time():
        raise ChatError("unauthorized", "token has expired; get a new one from /api/token")
    user = _active_user(user_id)
    if user is None or _binding(user) != binding:
        raise ChatError("unauthorized", "token is not valid")
    return user


def _active_user(user_id: object) -> User | None:
    # Every token handshake comes here: plain SQL (a raw query still builds the model
    # with the ORM's conversions) costs a fifth of a compiled queryset.
    model = get_user_model()
    meta = model._meta
    found = list(
        model.objects.raw(
            f"SELECT * FROM {connection.ops.quote_name(meta.db_table)} WHERE {meta.pk.column} = %s",
            [user_id],
        )
    )
    if not found or not getattr(found[0], "is_active", True):
        return None
    return found[0]
