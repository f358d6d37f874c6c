"""A room's feed on this node: its frames put back in `seq` order and handed to its subscriptions.

Publishers on different nodes reach Redis in any order, and the channel layer may drop a
message, so a gap is first waited for briefly (CHAT_REORDER_WAIT), then read from the
database through the feed's reader. This is plain logic: the hub (chat/hub.py) joins and
leaves the room's group and feeds it the events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field

from chatcluster import metrics
from chatcluster.conf import chat_settings
from chatcluster.flow import OutFrame

logger = logging.getLogger(__name__)

# Sends or queues a frame for one socket without waiting: fan-out stays synchronous, so
# frames leave in the order they were offered, whichever task offered them.
Send = Callable[[OutFrame], None]
# Reads a room's stored frames with after < seq < before, as (seq, text) in seq order.
Reader = Callable[[str, int, int], Awaitable[list[tuple[int, str]]]]


@dataclass(eq=False, slots=True)
class Subscription:
    """One socket's interest in one room."""

    room: str
    user: str
    conn: str
    send: Send
    # Highest seq sent to this socket; messages at or below it are repeats.
    upto: int = 0
    # Frames held back while the subscribe is still answering; None once live.
    pending: list[tuple[int | None, OutFrame]] | None = field(default_factory=list)
    # Whether its presence entry was written (and so is held by the node's lease).
    present: bool = False

    def offer(self, seq: int | None, frame: OutFrame) -> bool:
        if self.pending is not None:
            self.pending.append((seq, frame))
            return False
        if seq is not None:
            if seq <= self.upto:
                return False
            self.upto = seq
        self.send(frame)
        return True

    def go_live(self, upto: int) -> None:
        """Send what was held back past `upto`, then take frames as they come."""
        held, self.pending = self.pending or [], None
        self.upto = max(self.upto, upto)
        for seq, frame in held:
            self.offer(seq, frame)


@dataclass(eq=False)
class RoomFeed:
    slug: str
    read: Reader
    subs: set[Subscription] = field(default_factory=set)
    # Highest seq delivered in order; None until the first subscriber reads it.
    head: int | None = None
    early: dict[int, str] = field(default_factory=dict)
    # Highest seq the database is known to hold: the feed reads it back if no
    # broadcast brings it.
    known: int = 0
    # The room's last seq at the previous tail check.
    tail_seen: int = 0
    # Done once the node joined the room's group (set by the hub).
    joined: asyncio.Future[None] | None = None
    repair: asyncio.Task[None] | None = None

    def missing_upto(self) -> int:
        """The highest seq this feed should hold but has not delivered yet (<= head if none)."""
        early = min(self.early) - 1 if self.early else 0
        return max(self.known, early)

    def seed(self, last_seq: int) -> int:
        """Tell a fresh feed where the room stands, as read after its group was joined.

        Returns the feed's head: a socket whose read is older than a concurrent
        subscriber's may find the feed already past its `last_seq`.
        """
        if self.head is None:
            self.head = last_seq
            self.tail_seen = last_seq
            self.advance()
        return self.head

    def receive(self, seq: int, text: str, sent_at: float | None = None) -> None:
        """A broadcast message arrived: deliver it in order, or hold it until its turn."""
        if self.head is not None and seq <= self.head:
            return
        metrics.PUBLISH_TO_DELIVER.observe(0.0 if sent_at is None else max(0.0, time.time() - sent_at))
        self.early[seq] = text
        self.advance()

    def check_tail(self, tail: int, *, now: bool = False) -> None:
        """Read back what is missing up to the room's last seq `tail`, as of the previous check.

        A room's last seq is only trusted one check later (or at once with `now`, after
        Redis came back): a broadcast in flight normally arrives in milliseconds.
        """
        overdue = tail if now else self.tail_seen
        self.tail_seen = tail
        if self.head is not None and overdue > self.head:
            metrics.TAIL_REPAIRS.inc()
            self.known = max(self.known, overdue)
            self.advance()

    def advance(self) -> None:
        """Deliver head+1, head+2, ... while present; schedule a repair if a gap remains."""
        if self.head is None:
            return
        while self.head + 1 in self.early:
            self.head += 1
            self.fan_out(self.head, self.early.pop(self.head))
        for seq in [s for s in self.early if s <= self.head]:
            del self.early[seq]
        if self.missing_upto() > self.head and (self.repair is None or self.repair.done()):
            self.repair = asyncio.create_task(self._repair())

    def fan_out(self, seq: int | None, text: str, skip: Container[str] = ()) -> None:
        """Offer `text` to every subscription (but those of users in `skip`)."""
        # One frame object for every recipient: its wire bytes are built once, on first use.
        frame = OutFrame(text)
        sent = 0
        for sub in self.subs:
            if sub.user not in skip and sub.offer(seq, frame):
                sent += 1
        metrics.FRAMES_OUT.inc(sent)
        if seq is not None:
            metrics.MESSAGES_DELIVERED.inc(sent)

    def close(self) -> None:
        """The feed is dropped: stop its repair."""
        if self.repair is not None:
            self.repair.cancel()

    async def _repair(self) -> None:
        """Fill a seq gap: wait for stragglers, then read what is still missing."""
        try:
            async with asyncio.timeout(chat_settings.CHAT_WATCH_TIMEOUT):
                await self._repair_now()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The next tail check or message schedules another attempt; a repair that
            # hung would otherwise keep the room's feed stalled for good.
            logger.exception("gap repair failed in room %s", self.slug)

    async def _repair_now(self) -> None:
        await asyncio.sleep(chat_settings.CHAT_REORDER_WAIT)
        while self.head is not None and self.missing_upto() > self.head:
            if self.head + 1 in self.early:
                self.advance()
                continue
            upto = self.missing_upto()
            missing = await self.read(self.slug, self.head, upto + 1)
            metrics.GAP_REPAIRS.inc()
            for seq, text in missing:
                if seq > self.head:
                    self.early.setdefault(seq, text)
            # Broadcasts may have moved the head on while the database answered.
            if self.head < upto and self.head + 1 not in self.early:
                # Seqs are committed in order, so this means rows were deleted.
                logger.error("room %s: seq %d..%d missing from the database", self.slug, self.head + 1, upto)
                self.head = max(self.head, min(self.early) - 1 if self.early else upto)
            self.advance()
