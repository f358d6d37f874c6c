"""API keys for server-side publishing: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth.models import User
from django.utils import timezone

from chatcluster.errors import ChatError
from chatcluster.models import ApiKey

PREFIX_LENGTH = 12


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def apikey_create(*, name: str, user: User) -> tuple[ApiKey, str]:
    """A new key row and the plain key, which is never stored."""
    key = "ck_" + secrets.token_urlsafe(32)
    row = ApiKey.objects.create(name=name, user=user, prefix=key[:PREFIX_LENGTH], key_hash=_digest(key))
    return row, key


def apikey_user(*, key: str) -> User:
    row = ApiKey.objects.select_related("user").filter(prefix=key[:PREFIX_LENGTH], is_active=True).first()
    if row is None or not hmac.compare_digest(row.key_hash, _digest(key)) or not row.user.is_active:
        raise ChatError("unauthorized", "API key is not valid")
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.user
