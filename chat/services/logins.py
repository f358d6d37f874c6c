"""Throttles on POST /api/token, shared by every node: per client address and per username.

Each password check costs a node a few hundred milliseconds of CPU (Django's
PBKDF2), and each wrong one is a guess. Two limits, both in Redis so that spreading the
attempts over nodes gains nothing:
- a token bucket per client address (`CHAT_TOKEN_RATE`, `CHAT_TOKEN_BURST`), taken by
  every well-formed request, right or wrong, before any password is checked;
- a count of wrong passwords per username (`CHAT_LOGIN_FAILURES` within
  `CHAT_LOGIN_FAILURE_WINDOW`, from the first), past which the username is refused, the
  right password too, until the window ends; a success clears it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from chatcluster.conf import chat_settings
from chatcluster.errors import ChatError
from chatcluster.redis import get_script, shard_of
from chatcluster.services.ratelimit import TOKEN_BUCKET

logger = logging.getLogger(__name__)

# Milliseconds until the username may try again, or 0 while it has failures to spare.
_LOCKED_FOR = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures < tonumber(ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(ARGV[2])
end
return ttl
"""

# One more failure; the window starts at the first. Returns the count.
_FAILED = """
local failures = redis.call('INCR', KEYS[1])
if failures == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return failures
"""


def _address_key(address: str) -> tuple[str, int]:
    key = f"chat:rate:token:{address}"
    return key, shard_of(key)


def _username_key(username: str) -> tuple[str, int]:
    # Hashed: the name is the client's text, of any length; casefolded, so that a host whose
    # login ignores case gets no extra guesses from "Alice" and "ALICE".
    digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    key = f"chat:rate:login:{digest}"
    return key, shard_of(key)


def _window_ms() -> int:
    return int(chat_settings.CHAT_LOGIN_FAILURE_WINDOW * 1000)


async def _address_wait(address: str) -> float:
    if not chat_settings.CHAT_TOKEN_RATE:
        return 0.0
    key, shard = _address_key(address)
    script = get_script(TOKEN_BUCKET, shard)
    (wait,) = await script(
        keys=[key], args=[chat_settings.CHAT_TOKEN_RATE, chat_settings.CHAT_TOKEN_BURST, time.time()]
    )
    return float(wait)


async def _username_wait(username: str) -> float:
    if not chat_settings.CHAT_LOGIN_FAILURES:
        return 0.0
    key, shard = _username_key(username)
    script = get_script(_LOCKED_FOR, shard)
    locked_ms = await script(keys=[key], args=[chat_settings.CHAT_LOGIN_FAILURES, _window_ms()])
    return int(locked_ms) / 1000


async def login_admit(*, address: str, username: str) -> None:
    """Raise `rate_limited` (with `retry_after`) if `address` is out of tokens or `username` is locked out."""
    address_wait, username_wait = await asyncio.gather(_address_wait(address), _username_wait(username))
    if address_wait > 0:
        raise ChatError(
            "rate_limited", "too many token requests from this address; slow down", retry_after=round(address_wait, 3)
        )
    if username_wait > 0:
        raise ChatError(
            "rate_limited",
            "too many wrong passwords for this username; try again later",
            retry_after=round(username_wait, 3),
        )


async def login_failed(*, username: str) -> None:
    """Count a wrong password for `username`."""
    if not chat_settings.CHAT_LOGIN_FAILURES:
        return
    key, shard = _username_key(username)
    failures = await get_script(_FAILED, shard)(keys=[key], args=[_window_ms()])
    if int(failures) == chat_settings.CHAT_LOGIN_FAILURES:
        logger.warning(
            "a username is locked out of /api/token for %s s after %d wrong passwords",
            chat_settings.CHAT_LOGIN_FAILURE_WINDOW,
            failures,
        )


async def login_succeeded(*, username: str) -> None:
    """Forget `username`'s wrong passwords: the owner is back."""
    if chat_settings.CHAT_LOGIN_FAILURES:
        key, shard = _username_key(username)
        await get_script("return redis.call('DEL', KEYS[1])", shard)(keys=[key])
