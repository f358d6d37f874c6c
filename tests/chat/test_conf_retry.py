"""REDIS_RETRY: a closed connection is retried; a timeout, which may have run the command, is not."""

from __future__ import annotations

import copy

import pytest
from redis.asyncio.retry import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatcluster.conf import chat_settings


def redis_retry(retries: int) -> Retry:
    """REDIS_RETRY as the settings build it with REDIS_RETRIES=`retries`."""
    retry = copy.deepcopy(chat_settings.REDIS_RETRY)
    retry.update_retries(retries)
    return retry


async def failed(error: Exception) -> None:
    pass


async def flaky(errors: list[Exception], calls: list[int]) -> str:
    calls.append(1)
    if errors:
        raise errors.pop(0)
    return "ran"


async def test_a_closed_connection_is_tried_again_until_it_works() -> None:
    calls: list[int] = []
    errors: list[Exception] = [RedisConnectionError("closed"), RedisConnectionError("refused")]
    result = await redis_retry(3).call_with_retry(lambda: flaky(errors, calls), failed)
    assert result == "ran" and len(calls) == 3


async def test_retries_end_and_the_last_error_is_raised() -> None:
    calls: list[int] = []
    errors: list[Exception] = [RedisConnectionError(str(i)) for i in range(5)]
    with pytest.raises(RedisConnectionError, match="2"):
        await redis_retry(2).call_with_retry(lambda: flaky(errors, calls), failed)
    assert len(calls) == 3


async def test_a_timeout_is_not_retried() -> None:
    calls: list[int] = []
    with pytest.raises(RedisTimeoutError):
        await redis_retry(3).call_with_retry(lambda: flaky([RedisTimeoutError("slow")], calls), failed)
    assert len(calls) == 1
