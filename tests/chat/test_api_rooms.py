"""The rooms API of version 2: joining, the sidebar, the directory, members, users, moderation."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatcluster.models import Membership, Room, Sanction
from chatcluster.services.dms import dm_open
from chatcluster.services.messages import message_create

pytestmark = pytest.mark.django_db


def signed_in(name: str, **fields: Any) -> tuple[User, Client]:
    user = User.objects.create_user(name, **fields)
    client = Client()
    client.force_login(user)
    return user, client


def post(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, body or {}, content_type="application/json")


def test_joining_makes_a_member_and_the_creator_its_owner() -> None:
    _ann, ann_client = signed_in("ann")
    bob, bob_client = signed_in("bob")
    assert post(ann_client, "/api/rooms/new-room/join").json() == {"room": "new-room", "role": "owner"}
    assert post(bob_client, "/api/rooms/new-room/join").json() == {"room": "new-room", "role": "member"}
    assert post(bob_client, "/api/rooms/new-room/join").json()["role"] == "member"
    assert post(bob_client, "/api/rooms/new-room/leave").status_code == 200
    assert not Membership.objects.filter(user=bob).exists()
    assert post(bob_client, "/api/rooms/Bad_Slug/join").status_code == 400


def test_private_rooms_bans_and_dms_refuse_joining_or_leaving() -> None:
    ann, ann_client = signed_in("ann")
    bob, bob_client = signed_in("bob")
    Room.objects.create(slug="secret", is_private=True)
    assert post(bob_client, "/api/rooms/secret/join").status_code == 403
    room = Room.objects.create(slug="open")
    Sanction.objects.create(room=room, user=bob, kind="ban")
    answer = post(bob_client, "/api/rooms/open/join")
    assert (answer.status_code, answer.json()["detail"]) == (403, "you are banned from open")
    dm = dm_open(caller=ann, usernames=["bob"])
    assert post(ann_client, f"/api/rooms/{dm.slug}/leave").status_code == 400


def test_the_joined_list_counts_unread_and_mentions_and_names_the_people_of_a_dm() -> None:
    ann, _ann_client = signed_in("ann")
    bob, bob_client = signed_in("bob")
    post(bob_client, "/api/rooms/team/join")
    room = Room.objects.get(slug="team")
    message_create(room=room, author=ann, body="hello @bob")
    message_create(room=room, author=ann, body="and again")
    message_create(room=room, author=bob, body="my own does not count")
    dm = dm_open(caller=ann, usernames=["bob"])
    rooms = {r["slug"]: r for r in bob_client.get("/api/rooms?scope=joined").json()["rooms"]}
    assert rooms["team"] | {"seq": 0} == {
        "slug": "team", "title": "team", "private": False, "direct": False, "seq": 0, "read": 0,
        "unread": 2, "mentions": 1, "role": "owner", "people": [],
    }  # fmt: skip
    assert rooms[dm.slug]["direct"] and rooms[dm.slug]["people"] == ["ann"]
    # A DM someone else began has no read marker of yours: all of it is unread.
    message_create(room=dm, author=ann, body="psst @bob")
    rooms = {r["slug"]: r for r in bob_client.get("/api/rooms?scope=joined").json()["rooms"]}
    assert (rooms[dm.slug]["unread"], rooms[dm.slug]["mentions"], rooms[dm.slug]["read"]) == (1, 1, None)
    # Directs come after rooms: the page shows them in their own section.
    assert list(rooms) == ["team", dm.slug]


def test_the_directory_pages_and_searches_public_rooms_only() -> None:
    _ann, client = signed_in("ann")
    Room.objects.bulk_create([Room(slug=f"room-{i:03}", title=f"Topic {i}") for i in range(120)])
    Room.objects.create(slug="hidden", is_private=True)
    post(client, "/api/rooms/room-001/join")
    first = client.get("/api/rooms?scope=public&limit=50").json()
    assert len(first["rooms"]) == 50 and first["next"] == "room-049"
    assert first["rooms"][1] | {"seq": 0} == {
        "slug": "room-001", "title": "Topic 1", "private": False, "seq": 0, "read": 0, "joined": True, "members": 1
    }  # fmt: skip
    slugs = []
    after = ""
    while True:
        page = client.get(f"/api/rooms?scope=public&limit=50&after={after}").json()
        slugs += [r["slug"] for r in page["rooms"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert len(slugs) == 120 and "hidden" not in slugs
    found = client.get("/api/rooms?scope=public&q=topic 11").json()["rooms"]
    assert [r["slug"] for r in found] == [f"room-{i:03}" for i in (11, *range(110, 120))]
    assert client.get("/api/rooms?scope=everything").status_code == 400
    assert client.get("/api/rooms?scope=public&q=" + "x" * 65).status_code == 400


def test_members_and_users_answer_prefix_lookups() -> None:
    _ann, client = signed_in("ann")
    for name in ("bea", "ben", "carl"):
        user = User.objects.create_user(name)
        Membership.objects.create(room=Room.objects.get_or_create(slug="club")[0], user=user)
    User.objects.create_user("bert", is_active=False)
    answer = client.get("/api/rooms/club/members?q=be").json()
    assert answer["members"] == [{"username": "bea", "role": "member"}, {"username": "ben", "role": "member"}]
    assert answer["me"] == {"role": None, "moderator": False} and answer["slow_seconds"] == 0
    assert "banned" not in answer and "muted" not in answer  # for moderators only
    assert client.get("/api/users?q=b").json() == {"users": [{"username": "bea"}, {"username": "ben"}]}
    assert client.get("/api/users?q=").status_code == 400
    assert Client().get("/api/users?q=b").status_code == 401


@pytest.mark.parametrize(
    ("actor", "body", "status"),
    [
        ("member", {"action": "ban", "user": "target"}, 403),
        ("owner", {"action": "explode", "user": "target"}, 400),
        ("owner", {"action": "ban", "user": "nobody"}, 404),
        ("owner", {"action": "ban"}, 400),
        ("owner", {"user": "target"}, 400),
        ("owner", {"action": "slow", "seconds": -1}, 400),
        ("owner", {"action": "slow", "seconds": 3601}, 400),
        ("owner", {"action": "slow"}, 400),
        ("owner", {"action": "ban", "user": "owner"}, 403),
        ("moderator", {"action": "ban", "user": "owner"}, 403),
        ("moderator", {"action": "role", "user": "target", "role": "moderator"}, 403),
        ("owner", {"action": "role", "user": "target", "role": "owner"}, 400),
        ("owner", {"action": "ban", "user": "staff"}, 403),
    ],
)
def test_moderation_refusals(actor: str, body: dict[str, Any], status: int) -> None:
    room = Room.objects.create(slug="modded")
    clients = {}
    for name, role in (("owner", "owner"), ("moderator", "moderator"), ("member", "member"), ("target", "member")):
        user, clients[name] = signed_in(name)
        Membership.objects.create(room=room, user=user, role=role)
    User.objects.create_user("staff", is_staff=True)
    answer = post(clients[actor], "/api/rooms/modded/moderation", body)
    assert answer.status_code == status, answer.content
    assert not Sanction.objects.exists()
    assert room.moderation_log.count() == 0


def test_moderation_actions_apply_and_are_logged() -> None:
    room = Room.objects.create(slug="modded")
    owner, client = signed_in("owner")
    target = User.objects.create_user("target")
    Membership.objects.create(room=room, user=owner, role="owner")
    Membership.objects.create(room=room, user=target)
    for body in (
        {"action": "role", "user": "target", "role": "moderator"},
        {"action": "mute", "user": "target"},
        {"action": "mute", "user": "target"},
        {"action": "unmute", "user": "target"},
        {"action": "ban", "user": "target"},
        {"action": "slow", "seconds": 10},
    ):
        assert post(client, "/api/rooms/modded/moderation", body).status_code == 200
    assert list(Sanction.objects.values_list("kind", flat=True)) == ["ban"]
    listed = client.get("/api/rooms/modded/members").json()
    assert (listed["banned"], listed["muted"], listed["slow_seconds"]) == (["target"], [], 10)
    assert not Membership.objects.filter(user=target).exists()  # a ban ends the membership
    assert Room.objects.get(pk=room.pk).slow_seconds == 10
    log = list(room.moderation_log.order_by("id").values_list("action", "target_name", "detail"))
    assert log == [
        ("role", "target", "moderator"),
        ("mute", "target", ""),
        ("mute", "target", ""),
        ("unmute", "target", ""),
        ("ban", "target", ""),
        ("slow", "", "10"),
    ]


def test_history_around_a_message_centres_on_it() -> None:
    ann, client = signed_in("ann")
    room = Room.objects.create(slug="long")
    for i in range(30):
        message_create(room=room, author=ann, body=f"m{i + 1}")
    seqs = [m["seq"] for m in client.get("/api/rooms/long/messages?around=15&limit=6").json()["messages"]]
    assert seqs == [13, 14, 15, 16, 17, 18]
    seqs = [m["seq"] for m in client.get("/api/rooms/long/messages?around=29&limit=6").json()["messages"]]
    assert seqs == [25, 26, 27, 28, 29, 30]
    assert client.get("/api/rooms/long/messages?around=-1").status_code == 400
    assert client.get("/api/rooms/long/messages?around=x").status_code == 400
