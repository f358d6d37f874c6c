"""The /api/token throttles on their own, against the test Redis: per address and per username."""

from __future__ import annotations

import asyncio
from typing import Any

from chatcluster.errors import ChatError
from chatcluster.services.logins import login_admit, login_failed, login_succeeded


async def refusal(*, address: str = "203.0.113.1", username: str = "amy") -> ChatError | None:
    try:
        await login_admit(address=address, username=username)
    except ChatError as exc:
        return exc
    return None


async def test_an_address_gets_its_burst_then_waits_for_the_rate(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_BURST = 2
    chat_conf.CHAT_TOKEN_RATE = 0.5
    assert [await refusal(), await refusal()] == [None, None]
    refused = await refusal()
    assert refused is not None and refused.code == "rate_limited"
    assert refused.retry_after is not None and 1.5 < refused.retry_after <= 2
    assert await refusal(address="203.0.113.2") is None


async def test_the_failures_of_a_username_lock_it_until_the_window_after_the_first_ends(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_RATE = 0  # every poll below would take a token
    chat_conf.CHAT_LOGIN_FAILURES = 2
    chat_conf.CHAT_LOGIN_FAILURE_WINDOW = 1
    await login_failed(username="amy")
    assert await refusal() is None
    await login_failed(username="amy")
    locked = await refusal()
    assert locked is not None and locked.retry_after is not None and 0 < locked.retry_after <= 1
    # Case does not buy more guesses, and nobody else is locked.
    assert await refusal(username="AMY") is not None
    assert await refusal(username="ben") is None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while await refusal() is not None:
        assert loop.time() < deadline, "still locked 3 s into a 1 s window"
        await asyncio.sleep(0.05)


async def test_a_success_forgets_the_failures(chat_conf: Any) -> None:
    chat_conf.CHAT_LOGIN_FAILURES = 2
    await login_failed(username="amy")
    await login_succeeded(username="amy")
    await login_failed(username="amy")
    assert await refusal() is None


async def test_a_token_rate_of_zero_turns_the_address_throttle_off(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_RATE = 0
    chat_conf.CHAT_TOKEN_BURST = 1
    assert [await refusal() for _ in range(5)] == [None] * 5


async def test_zero_failures_turns_the_username_lockout_off(chat_conf: Any) -> None:
    chat_conf.CHAT_TOKEN_RATE = 0
    chat_conf.CHAT_LOGIN_FAILURES = 0
    for _ in range(5):
        await login_failed(username="amy")
    assert await refusal() is None
