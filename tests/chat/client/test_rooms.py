"""One room's seq view: the recovery rules of docs/protocol.md, without a socket."""

from __future__ import annotations

from chatcluster.client.frames import Delete, Edit, Message, React, Subscribed, Unknown
from chatcluster.client.rooms import RoomState, Sequenced


def message(seq: int) -> Message:
    return Message(room="r", seq=seq, user="u", body=f"m{seq}", ts="t")


def subscribed(seq: int, recovered: bool | None = None, presence: list[str] | None = None) -> Subscribed:
    return Subscribed(room="r", seq=seq, presence=presence or [], recovered=recovered, ref="s")


def live(last: int) -> RoomState:
    state = RoomState("r")
    state.sent_subscribe("s", None)
    state.on_subscribed(subscribed(last))
    return state


def seqs(frames: list[Sequenced] | None) -> list[int | None] | None:
    return None if frames is None else [f.seq for f in frames]


def test_a_first_subscribe_starts_the_view_at_the_rooms_seq() -> None:
    state = RoomState("r")
    assert state.next_since() is None
    state.sent_subscribe("s", None)
    assert not state.catching
    assert state.on_subscribed(subscribed(41)) == ([], False)
    assert state.last == 41 and state.next_since() == 41


def test_the_next_message_is_handed_out_and_a_repeat_is_dropped() -> None:
    state = live(3)
    assert seqs(state.accept(message(4))) == [4]
    assert state.accept(message(4)) is None
    assert state.accept(message(2)) is None
    assert state.repeats == 2 and state.last == 4


def test_a_message_past_a_gap_is_held_and_asks_for_a_repair() -> None:
    state = live(3)
    assert state.accept(message(6)) == []
    assert state.gap() and state.last == 3
    state.sent_subscribe("repair", state.next_since())
    assert state.since == 3 and state.catching and not state.gap()


def test_a_replay_that_fills_the_gap_hands_out_what_was_held_in_order() -> None:
    state = live(3)
    state.accept(message(6))
    state.sent_subscribe("repair", 3)
    assert seqs(state.accept(message(4))) == [4]
    assert seqs(state.accept(message(5))) == [5, 6]
    assert state.on_subscribed(subscribed(6, recovered=True)) == ([], False)
    assert state.last == 6 and not state.buffer


def test_recovered_false_resets_the_view_to_the_rooms_seq() -> None:
    state = live(3)
    state.accept(message(2000))
    state.dropped()
    state.sent_subscribe("again", 3)
    assert seqs(state.on_subscribed(subscribed(2000, recovered=False))[0]) == []
    assert state.last == 2000 and not state.buffer
    assert state.on_subscribed(subscribed(2000, recovered=False))[1] is True


def test_a_restart_subscribes_without_since_and_reports_a_reset_once() -> None:
    state = live(3)
    state.restart()
    assert state.next_since() is None
    state.sent_subscribe("fresh", None)
    assert state.on_subscribed(subscribed(1)) == ([], True)
    assert state.on_subscribed(subscribed(1)) == ([], False)


def test_an_earlier_since_asks_for_a_replay_but_never_a_later_one() -> None:
    state = live(5)
    assert state.next_since(0) == 0
    assert state.next_since(9) == 5
    assert RoomState("r", last=7).next_since() == 7


def test_changes_share_the_seq_stream_with_messages_repeats_gaps_and_all() -> None:
    state = live(1)
    edit = Edit(room="r", seq=2, target=1, user="u", body="m1!", ts="t")
    react = React(room="r", seq=4, target=1, user="v", emoji="👍", on=True, ts="t")
    delete = Delete(room="r", seq=5, target=3, user="u", ts="t")
    assert state.accept(edit) == [edit]
    assert state.accept(react) == [] and state.accept(delete) == []
    assert state.gap() and state.last == 2
    assert state.accept(edit) is None  # a replay's repeat, dropped by seq like a message's
    assert state.accept(message(3)) == [message(3), react, delete]
    assert state.accept(react) is None
    assert state.last == 5 and not state.buffer and state.repeats == 2


def test_a_newer_servers_event_with_a_seq_takes_its_place_in_the_stream() -> None:
    state = live(1)
    pin = Unknown("pin", {"type": "pin", "room": "r", "seq": 3, "target": 1})
    assert state.accept(pin) == []
    assert seqs(state.accept(message(2))) == [2, 3]


def test_presence_changes_are_reported_only_after_the_first_list() -> None:
    state = RoomState("r")
    assert state.replace_presence(["a", "b"]) == ([], [])
    state.apply_presence(["c"], ["a"])
    assert state.presence == {"b", "c"}
    assert state.replace_presence(["b", "d"]) == (["d"], ["c"])
