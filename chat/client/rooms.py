"""One room's view of its seq stream: repeats dropped, order kept, gaps held until repaired.

The rules of docs/protocol.md (Sequence numbers and recovery), as chat/static/chatcluster/client.js
keeps them. `last` is the highest seq up to which every event of the room was delivered.
"""

from __future__ import annotations

from chatcluster.client.frames import Delete, Edit, Message, React, Subscribed, Unknown

# An event of a room's seq stream: a message, a change to one (they count from the same
# seq), or a newer server's event that carries a seq.
Sequenced = Message | Edit | Delete | React | Unknown


def seq_of(frame: Sequenced) -> int:
    seq = frame.seq
    if seq is None:
        raise ValueError(f"{frame!r} carries no seq")
    return seq


class RoomState:
    def __init__(self, name: str, last: int | None = None) -> None:
        self.name = name
        self.last = last
        self.buffer: dict[int, Sequenced] = {}  # held back, past a gap
        self.presence: set[str] = set()
        self.presence_known = False  # a `subscribed` has listed it once
        self.subscribed = False  # the current socket's subscription is answered
        self.catching = False  # a subscribe with `since` is in flight: its replay fills gaps
        self.sub_ref: str | None = None  # the ref of the subscribe whose answer counts
        self.since: int | None = None  # the `since` that subscribe carried
        self.repeats = 0  # events dropped because this view already held their seq
        self.reset_pending = False  # restarted: the next answer tells the user to reload

    def next_since(self, asked: int | None = None) -> int | None:
        """The `since` of the next subscribe: `last`, or an earlier seq the caller asked to replay from."""
        if self.last is None:
            return asked
        return self.last if asked is None else min(asked, self.last)

    def sent_subscribe(self, ref: str, since: int | None) -> None:
        self.sub_ref = ref
        self.since = since
        self.catching = since is not None

    def dropped(self) -> None:
        """The socket is gone: nothing is subscribed on the next one yet."""
        self.subscribed = False
        self.catching = False

    def accept(self, frame: Sequenced) -> list[Sequenced] | None:
        """The events now in order (none while a gap holds them back), or None for a repeat."""
        seq = seq_of(frame)
        if self.last is not None and seq <= self.last:
            self.repeats += 1
            return None
        if self.last is None or seq > self.last + 1:
            self.buffer[seq] = frame
            return []
        self.last = seq
        return [frame, *self._drain()]

    def gap(self) -> bool:
        """Events are held past a gap and no replay that would fill it is on its way."""
        return self.last is not None and bool(self.buffer) and self.subscribed and not self.catching

    def on_subscribed(self, frame: Subscribed) -> tuple[list[Sequenced], bool]:
        """The events the answer puts in order, and whether the view was reset (`recovered` false)."""
        self.subscribed = True
        self.catching = False
        reset = frame.recovered is False or self.reset_pending
        self.reset_pending = False
        if frame.recovered is False or self.last is None:
            # Fresh, or too much was missed: live events go on after the room's seq.
            self.last = frame.seq
        return self._drain(), reset

    def apply_presence(self, joined: list[str], left: list[str]) -> None:
        self.presence.update(joined)
        self.presence.difference_update(left)

    def replace_presence(self, users: list[str]) -> tuple[list[str], list[str]]:
        """Who joined and who left since the last list (nothing the first time: the caller has the list)."""
        old, new = self.presence, set(users)
        self.presence = new
        if not self.presence_known:
            self.presence_known = True
            return [], []
        return sorted(new - old), sorted(old - new)

    def restart(self) -> None:
        """The server holds less than we do (its data was reset): start over without `since`."""
        self.last = None
        self.buffer.clear()
        self.reset_pending = True

    def _drain(self) -> list[Sequenced]:
        assert self.last is not None
        for seq in [s for s in self.buffer if s <= self.last]:
            del self.buffer[seq]
        out = []
        while (frame := self.buffer.pop(self.last + 1, None)) is not None:
            self.last += 1
            out.append(frame)
        return out
