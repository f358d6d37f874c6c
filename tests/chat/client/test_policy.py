"""Reconnect delays by close code, with the jitter pinned to its extremes."""

from __future__ import annotations

import pytest

from chatcluster.client import policy


def top() -> float:
    return 1.0


def bottom() -> float:
    return 0.0


def test_backoff_doubles_from_half_a_second_and_stops_at_ten() -> None:
    assert [policy.backoff(a, top) for a in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert policy.backoff(5, bottom) == 0


@pytest.mark.parametrize("code", [None, 1000, 1001, 1006, 1011, 4429])
def test_a_drop_backs_off_with_full_jitter_and_counts_an_attempt(code: int | None) -> None:
    assert policy.reconnect_delay(code, 3, top) == (4.0, 4)
    assert policy.reconnect_delay(code, 3, bottom) == (0.0, 4)


def test_a_drain_comes_back_at_once_within_300_ms_and_counts_no_attempt() -> None:
    assert policy.reconnect_delay(1012, 5, top) == (pytest.approx(0.3), 5)
    assert policy.reconnect_delay(1012, 5, bottom) == (0.0, 5)


def test_try_again_later_waits_at_least_250_ms_then_a_backoff_of_at_least_2_s() -> None:
    assert policy.reconnect_delay(1013, 0, bottom) == (0.25, 1)
    assert policy.reconnect_delay(1013, 0, top) == (2.25, 1)
    assert policy.reconnect_delay(1013, 4, top) == (8.25, 5)


def test_a_close_for_flooding_waits_two_seconds_at_the_least() -> None:
    assert policy.reconnect_delay(1008, 0, bottom) == (2.0, 1)
    assert policy.reconnect_delay(1008, 0, top) == (10.0, 1)


@pytest.mark.parametrize("code", [4401, 4403])
def test_refused_credentials_or_origin_are_fatal_and_say_what_to_do(code: int) -> None:
    reason = policy.fatal_reason(code)
    assert reason is not None and str(code) in reason and "pass" in reason


@pytest.mark.parametrize("code", [None, 1006, 1008, 1012, 1013, 4429])
def test_every_other_end_is_retried(code: int | None) -> None:
    assert policy.fatal_reason(code) is None
