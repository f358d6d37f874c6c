"""A socket's frame budget: a token bucket per frame type."""

from __future__ import annotations

from typing import Any

import pytest

from chatcluster import budget
from chatcluster.budget import FrameBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    monkeypatch.setattr(budget.time, "monotonic", made)
    return made


def test_a_burst_is_allowed_then_the_bucket_refuses(clock: Clock, chat_conf: Any) -> None:
    chat_conf.CHAT_FRAMES_TYPING = "1/3"
    frames = FrameBudget()
    assert [frames.take("typing") for _ in range(4)] == [True, True, True, False]


def test_the_bucket_refills_at_its_rate_and_never_past_its_burst(clock: Clock, chat_conf: Any) -> None:
    chat_conf.CHAT_FRAMES_HISTORY = "2/4"
    frames = FrameBudget()
    assert all(frames.take("history") for _ in range(4))
    clock.now += 0.5  # one frame back at 2/s
    assert [frames.take("history") for _ in range(2)] == [True, False]
    clock.now += 3600
    assert [frames.take("history") for _ in range(5)] == [True, True, True, True, False]


def test_each_frame_type_has_a_bucket_of_its_own(clock: Clock, chat_conf: Any) -> None:
    chat_conf.CHAT_FRAMES_PING = "1/1"
    frames = FrameBudget()
    assert frames.take("ping") and not frames.take("ping")
    assert frames.take("publish") and frames.take("invalid")


def test_a_malformed_budget_is_refused_by_name(chat_conf: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    chat_conf.CHAT_FRAMES_PING = "fast"
    with pytest.raises(ImproperlyConfigured, match="CHAT_FRAMES_PING"):
        FrameBudget().take("ping")
