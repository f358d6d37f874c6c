"""Edit, delete, react: entries of the seq stream that also set the message's final state."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from chatcluster.errors import ChatError
from chatcluster.models import Membership, Room
from chatcluster.services.changes import emoji_check, message_delete, message_edit, message_react
from chatcluster.services.history import message_history
from chatcluster.services.messages import message_create, message_frames_after
from chatcluster.services.search import message_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def room() -> Room:
    return Room.objects.create(slug="changes", title="changes")


@pytest.fixture
def ann() -> User:
    return User.objects.create_user("ann")


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob")


def test_changes_take_the_next_seqs_and_history_shows_the_final_state(room: Room, ann: User, bob: User) -> None:
    first = message_create(room=room, author=ann, body="helo wrld").seq
    second = message_create(room=room, author=bob, body="hi").seq
    edit = message_edit(slug="changes", user=ann, target=first, body="hello world")
    react = message_react(slug="changes", user=bob, target=first, emoji="👍", on=True)
    react_ann = message_react(slug="changes", user=ann, target=first, emoji="👍", on=True)
    delete = message_delete(slug="changes", user=bob, target=second)
    assert [edit.seq, react.seq, react_ann.seq, delete.seq] == [3, 4, 5, 6]
    assert json.loads(edit.frame) == {
        "type": "edit",
        "room": "changes",
        "seq": 3,
        "target": first,
        "user": "ann",
        "body": "hello world",
        "ts": json.loads(edit.frame)["ts"],
    }
    history = message_history(slug="changes", user=ann, before=None, limit=50)
    assert [m["seq"] for m in history] == [1, 2]
    assert history[0]["body"] == "hello world" and "edited" in history[0]
    assert history[0]["reactions"] == {"👍": ["bob", "ann"]}
    assert history[1]["deleted"] is True and "body" not in history[1] and history[1]["reactions"] == {}


def test_a_replay_sends_each_change_after_the_message_in_its_current_state(room: Room, ann: User) -> None:
    seq = message_create(room=room, author=ann, body="draft").seq
    message_edit(slug="changes", user=ann, target=seq, body="final")
    message_react(slug="changes", user=ann, target=seq, emoji="🎉", on=True)
    frames = [json.loads(f) for f in message_frames_after(room=Room.objects.get(pk=room.pk), after=0)]
    assert [(f["type"], f["seq"]) for f in frames] == [("message", 1), ("edit", 2), ("react", 3)]
    assert frames[0]["body"] == "final" and "edited" in frames[0]
    assert frames[2]["emoji"] == "🎉" and frames[2]["on"] is True
    message_delete(slug="changes", user=ann, target=seq)
    frames = [json.loads(f) for f in message_frames_after(room=Room.objects.get(pk=room.pk), after=0)]
    # Deleted text is gone from the replay: the message and its earlier edit alike.
    assert frames[0]["deleted"] is True and frames[0]["body"] == "" and frames[1]["body"] == ""
    assert frames[3]["type"] == "delete" and frames[3]["target"] == seq


def test_the_same_reaction_state_twice_stores_nothing_and_acks_the_first_seq(room: Room, ann: User) -> None:
    seq = message_create(room=room, author=ann, body="x").seq
    on = message_react(slug="changes", user=ann, target=seq, emoji="👍🏽", on=True)
    again = message_react(slug="changes", user=ann, target=seq, emoji="👍🏽", on=True)
    assert (again.seq, again.created) == (on.seq, False)
    off = message_react(slug="changes", user=ann, target=seq, emoji="👍🏽", on=False)
    assert off.created and off.seq == on.seq + 1
    assert message_react(slug="changes", user=ann, target=seq, emoji="👍🏽", on=False).seq == off.seq
    never = message_react(slug="changes", user=ann, target=seq, emoji="😮", on=False)
    assert (never.seq, never.created) == (seq, False)
    assert Room.objects.get(pk=room.pk).last_seq == off.seq


def test_a_second_delete_acks_the_first(room: Room, ann: User) -> None:
    seq = message_create(room=room, author=ann, body="oops").seq
    first = message_delete(slug="changes", user=ann, target=seq)
    again = message_delete(slug="changes", user=ann, target=seq)
    assert (again.seq, again.created) == (first.seq, False)


@pytest.mark.parametrize(
    ("who", "action", "code"),
    [
        ("bob", lambda u, t: message_edit(slug="changes", user=u, target=t, body="mine now"), "forbidden"),
        ("bob", lambda u, t: message_delete(slug="changes", user=u, target=t), "forbidden"),
        ("ann", lambda u, t: message_edit(slug="changes", user=u, target=t, body="   "), "bad_request"),
        ("ann", lambda u, t: message_edit(slug="changes", user=u, target=t, body="x" * 4001), "too_large"),
        ("ann", lambda u, t: message_edit(slug="changes", user=u, target=t + 50, body="x"), "not_found"),
        ("ann", lambda u, t: message_react(slug="changes", user=u, target=t, emoji="👍👍", on=True), "bad_request"),
        ("ann", lambda u, t: message_react(slug="changes", user=u, target=t, emoji="a", on=True), "bad_request"),
        ("ann", lambda u, t: message_edit(slug="changes", user=u, target=t + 1, body="x"), "not_found"),
    ],
    ids=["edit-others", "delete-others", "empty", "too-long", "unknown", "two-emoji", "not-emoji", "target-a-change"],
)
def test_refused_changes_store_nothing(room: Room, ann: User, bob: User, who: str, action: object, code: str) -> None:
    seq = message_create(room=room, author=ann, body="original").seq
    message_react(slug="changes", user=ann, target=seq, emoji="👍", on=True)  # seq + 1 is a change
    last = Room.objects.get(pk=room.pk).last_seq
    with pytest.raises(ChatError) as caught:
        action({"ann": ann, "bob": bob}[who], seq)  # type: ignore[operator]
    assert caught.value.code == code
    assert Room.objects.get(pk=room.pk).last_seq == last
    assert message_history(slug="changes", user=ann, before=None, limit=5)[0]["body"] == "original"


def test_a_deleted_message_cannot_be_edited_or_reacted_to_and_leaves_search(room: Room, ann: User) -> None:
    seq = message_create(room=room, author=ann, body="secret plans").seq
    message_edit(slug="changes", user=ann, target=seq, body="secret plans revised")
    assert len(message_search(user=ann, query="secret")) == 1
    message_delete(slug="changes", user=ann, target=seq)
    assert message_search(user=ann, query="secret") == []
    for action in (
        lambda: message_edit(slug="changes", user=ann, target=seq, body="x"),
        lambda: message_react(slug="changes", user=ann, target=seq, emoji="👍", on=True),
    ):
        with pytest.raises(ChatError) as caught:
            action()
        assert caught.value.code == "not_found"


def test_moderators_and_staff_delete_others_messages_and_it_is_logged(room: Room, ann: User, bob: User) -> None:
    Membership.objects.create(room=room, user=bob, role=Membership.Role.MODERATOR)
    seq = message_create(room=room, author=ann, body="spam").seq
    message_delete(slug="changes", user=bob, target=seq)
    assert room.moderation_log.get().action == "delete"
    staff = User.objects.create_user("root", is_staff=True)
    other = message_create(room=room, author=ann, body="more spam").seq
    assert message_delete(slug="changes", user=staff, target=other).created


@pytest.mark.parametrize("emoji", ["👍", "👍🏽", "🇫🇷", "👨‍👩‍👧‍👦", "❤️", "1️⃣"])
def test_one_emoji_grapheme_is_a_reaction(emoji: str) -> None:
    assert emoji_check(emoji=emoji) == emoji


@pytest.mark.parametrize("emoji", ["", "a", "👍👍", "😀 ", "#", "👍" + "\u200d👍" * 9])
def test_anything_else_is_not(emoji: str) -> None:
    with pytest.raises(ChatError):
        emoji_check(emoji=emoji)


def test_host_code_hears_of_edits_and_deletes(room: Room, ann: User) -> None:
    from chatcluster.signals import message_deleted, message_edited

    heard: list[tuple[str, dict[str, object]]] = []

    def on_edit(sender: object, *, message: dict[str, object], **kwargs: object) -> None:
        heard.append(("edited", message))

    def on_delete(sender: object, *, message: dict[str, object], **kwargs: object) -> None:
        heard.append(("deleted", message))

    message_edited.connect(on_edit, weak=False)
    message_deleted.connect(on_delete, weak=False)
    try:
        seq = message_create(room=room, author=ann, body="teh").seq
        message_edit(slug="changes", user=ann, target=seq, body="the")
        message_delete(slug="changes", user=ann, target=seq)
    finally:
        message_edited.disconnect(on_edit)
        message_deleted.disconnect(on_delete)
    assert [(kind, m["seq"], m["body"]) for kind, m in heard] == [("edited", seq, "the"), ("deleted", seq, "")]
    assert "edited" in heard[0][1] and heard[1][1]["deleted"] is True
