"""chat/feeds.py: a room's frames in seq order, held while subscribing, repaired from a reader.

Plain logic: no Redis, no daphne, no database. The reader stands in for the database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatcluster.feeds import RoomFeed, Subscription
from chatcluster.flow import OutFrame


class Reader:
    """The database, as a feed sees it: stored frames by seq; counts its reads."""

    def __init__(self, stored: dict[int, str] | None = None) -> None:
        self.stored = stored or {}
        self.reads: list[tuple[str, int, int]] = []

    async def __call__(self, slug: str, after: int, before: int) -> list[tuple[int, str]]:
        self.reads.append((slug, after, before))
        return [(seq, text) for seq, text in sorted(self.stored.items()) if after < seq < before]


def subscriber(feed: RoomFeed, user: str = "ann", *, live: bool = True) -> list[str]:
    """Subscribe a socket that records what it is sent; returns that record."""
    got: list[str] = []
    sub = Subscription(room=feed.slug, user=user, conn=f"n/{user}", send=lambda frame: got.append(frame.text))
    if live:
        sub.go_live(0)
    feed.subs.add(sub)
    return got


@pytest.fixture(autouse=True)
def _quick(chat_conf: Any) -> None:
    chat_conf.CHAT_REORDER_WAIT = 0.01
    chat_conf.CHAT_WATCH_TIMEOUT = 1


async def settle(feed: RoomFeed) -> None:
    if feed.repair is not None:
        await asyncio.wait_for(feed.repair, 1)


async def test_messages_in_order_are_delivered_at_once() -> None:
    feed = RoomFeed("r", read=Reader())
    got = subscriber(feed)
    feed.seed(0)
    for seq in (1, 2, 3):
        feed.receive(seq, f"m{seq}")
    assert got == ["m1", "m2", "m3"]
    assert feed.head == 3
    assert feed.repair is None


async def test_an_early_message_waits_for_the_one_before_it() -> None:
    feed = RoomFeed("r", read=Reader())
    got = subscriber(feed)
    feed.seed(0)
    feed.receive(2, "m2")
    assert got == []
    assert feed.early == {2: "m2"}
    feed.receive(1, "m1")
    assert got == ["m1", "m2"]
    assert feed.early == {}
    await settle(feed)


async def test_repeats_and_old_messages_are_dropped() -> None:
    feed = RoomFeed("r", read=Reader())
    got = subscriber(feed)
    feed.seed(5)
    feed.receive(5, "old")
    feed.receive(6, "m6")
    feed.receive(6, "m6 again")
    assert got == ["m6"]


async def test_messages_before_the_seed_are_held_and_those_at_or_below_it_dropped() -> None:
    feed = RoomFeed("r", read=Reader())
    got = subscriber(feed)
    feed.receive(3, "m3")
    feed.receive(4, "m4")
    assert got == []
    # The seed delivers what it already holds past the seeded seq, and returns the head.
    assert feed.seed(3) == 4
    assert got == ["m4"]
    # A later subscriber's older read does not move the head back.
    assert feed.seed(1) == 4


async def test_missing_upto_is_the_highest_seq_known_but_not_delivered() -> None:
    feed = RoomFeed("r", read=Reader())
    feed.head = 2
    assert feed.missing_upto() <= feed.head
    feed.early = {6: "m6", 9: "m9"}
    assert feed.missing_upto() == 5
    feed.known = 8
    assert feed.missing_upto() == 8


async def test_a_gap_is_read_from_the_reader_after_the_reorder_wait() -> None:
    reader = Reader({2: "m2", 3: "m3"})
    feed = RoomFeed("r", read=reader)
    got = subscriber(feed)
    feed.seed(1)
    feed.receive(4, "m4")
    assert feed.repair is not None
    await settle(feed)
    assert reader.reads == [("r", 1, 4)]
    assert got == ["m2", "m3", "m4"]
    assert feed.head == 4


async def test_a_gap_filled_by_a_late_broadcast_is_not_read() -> None:
    reader = Reader()
    feed = RoomFeed("r", read=reader)
    got = subscriber(feed)
    feed.seed(0)
    feed.receive(2, "m2")
    feed.receive(1, "m1")
    await settle(feed)
    assert reader.reads == []
    assert got == ["m1", "m2"]


async def test_one_repair_runs_at_a_time() -> None:
    feed = RoomFeed("r", read=Reader({1: "m1", 3: "m3"}))
    subscriber(feed)
    feed.seed(0)
    feed.receive(2, "m2")
    first = feed.repair
    feed.receive(4, "m4")
    assert feed.repair is first
    await settle(feed)
    assert feed.head == 4


async def test_seqs_missing_from_the_reader_too_are_skipped() -> None:
    feed = RoomFeed("r", read=Reader())
    got = subscriber(feed)
    feed.seed(0)
    feed.receive(3, "m3")
    await settle(feed)
    assert got == ["m3"]
    assert feed.head == 3


async def test_a_tail_is_read_back_one_check_after_it_was_seen() -> None:
    reader = Reader({1: "m1"})
    feed = RoomFeed("r", read=reader)
    got = subscriber(feed)
    feed.seed(0)
    feed.check_tail(1)
    assert feed.repair is None  # a broadcast in flight gets one check to arrive
    feed.check_tail(1)
    await settle(feed)
    assert got == ["m1"]


async def test_after_a_restore_the_tail_is_read_back_at_once() -> None:
    feed = RoomFeed("r", read=Reader({1: "m1", 2: "m2"}))
    got = subscriber(feed)
    feed.seed(0)
    feed.check_tail(2, now=True)
    await settle(feed)
    assert got == ["m1", "m2"]


async def test_closing_a_feed_cancels_its_repair() -> None:
    feed = RoomFeed("r", read=Reader())
    subscriber(feed)
    feed.seed(0)
    feed.receive(2, "m2")
    repair = feed.repair
    assert repair is not None
    feed.close()
    with pytest.raises(asyncio.CancelledError):
        await repair


def test_a_subscription_holds_frames_until_it_goes_live_then_sends_those_past_its_seq() -> None:
    got: list[str] = []
    sub = Subscription(room="r", user="ann", conn="n/1", send=lambda frame: got.append(frame.text))
    assert not sub.offer(1, OutFrame("m1"))
    assert not sub.offer(None, OutFrame("presence"))
    assert not sub.offer(2, OutFrame("m2"))
    sub.go_live(1)
    assert got == ["presence", "m2"]
    assert sub.offer(3, OutFrame("m3"))
    assert not sub.offer(3, OutFrame("m3 again"))
    assert got == ["presence", "m2", "m3"]


async def test_fan_out_skips_the_given_users_and_shares_one_frame() -> None:
    feed = RoomFeed("r", read=Reader())
    frames: list[OutFrame] = []
    for user in ("ann", "bob", "cy"):
        sub = Subscription(room="r", user=user, conn=f"n/{user}", send=frames.append)
        sub.go_live(0)
        feed.subs.add(sub)
    feed.fan_out(None, "typing", skip=("bob",))
    assert len(frames) == 2
    assert frames[0] is frames[1]
