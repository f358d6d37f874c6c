"""Contract v2 across real nodes: changes in the seq stream, moderation on every node, mentions."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.cluster import Client, RunningCluster

pytestmark = [pytest.mark.cluster, pytest.mark.db_agnostic]


def room() -> str:
    return "v2-" + uuid.uuid4().hex[:10]


async def ask(client: Client, ref: str, **frame: Any) -> dict[str, Any]:
    await client.send(ref=ref, **frame)
    return await client.until(lambda f: f.get("ref") == ref)


def entries(client: Client, room: str) -> list[dict[str, Any]]:
    return [f for f in client.frames if f.get("room") == room and f["type"] in ("message", "edit", "delete", "react")]


async def stream(client: Client, room: str, upto: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Every seq'd frame of `room` up to seq `upto`, in arrival order (consumed)."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["seq"] < upto:
        got.append(
            await client.until(
                lambda f: f.get("room") == room and f["type"] in ("message", "edit", "delete", "react"), timeout
            )
        )
    return got


async def test_edits_deletes_and_reactions_reach_every_node_in_seq_order_and_replay_with_since(
    cluster: RunningCluster,
) -> None:
    r = room()
    ann_token, bob_token, cat_token = cluster.tokens("v2-ann", "v2-bob", "v2-cat")
    ann = await Client.open(cluster.node_port(0), ann_token)
    bob = await Client.open(cluster.node_port(1), bob_token)
    cat = await Client.open(cluster.node_port(2), cat_token)
    for client in (ann, bob, cat):
        await client.subscribe(r)
    first = await ask(ann, "p1", type="publish", room=r, body="helo")
    second = await ask(bob, "p2", type="publish", room=r, body="mine")
    assert await stream(cat, r, 2) and first["seq"] == 1 and second["seq"] == 2
    await cat.close()  # away while the message changes
    assert (await ask(ann, "e", type="edit", room=r, target=1, body="hello"))["seq"] == 3
    assert (await ask(bob, "r", type="react", room=r, target=1, emoji="👍", on=True))["seq"] == 4
    assert (await ask(bob, "r2", type="react", room=r, target=1, emoji="👍", on=True))["seq"] == 4
    assert (await ask(bob, "d", type="delete", room=r, target=2))["seq"] == 5
    seen = await stream(ann, r, 5)
    assert [(f["type"], f["seq"]) for f in seen] == [
        ("message", 1),
        ("message", 2),
        ("edit", 3),
        ("react", 4),
        ("delete", 5),
    ]
    assert seen[2] | {"ts": None} == {
        "type": "edit", "room": r, "seq": 3, "target": 1, "user": "v2-ann", "body": "hello", "ts": None
    }  # fmt: skip
    assert (seen[3]["emoji"], seen[3]["on"], seen[3]["user"], seen[4]["target"]) == ("👍", True, "v2-bob", 2)

    back = await Client.open(cluster.node_port(1), cat_token)
    subscribed = await back.subscribe(r, since=2)
    assert subscribed["recovered"] is True and subscribed["seq"] == 5
    assert [(f["type"], f["seq"], f.get("target")) for f in entries(back, r)] == [
        ("edit", 3, 1),
        ("react", 4, 1),
        ("delete", 5, 2),
    ]
    history = await ask(back, "h", type="history", room=r)
    assert history["messages"][0]["body"] == "hello" and "edited" in history["messages"][0]
    assert history["messages"][0]["reactions"] == {"👍": ["v2-bob"]}
    assert history["messages"][1]["deleted"] is True and "body" not in history["messages"][1]
    for client in (ann, bob, back):
        await client.close()


BAD_CHANGES = [
    ({"type": "edit", "target": 1, "body": "not yours"}, "forbidden"),
    ({"type": "delete", "target": 1}, "forbidden"),
    ({"type": "edit", "target": 99, "body": "x"}, "not_found"),
    ({"type": "react", "target": 99, "emoji": "👍"}, "not_found"),
    ({"type": "edit", "target": 2, "body": "x"}, "not_found"),  # a change, not a message
    ({"type": "edit", "target": 1, "body": " "}, "bad_request"),
    ({"type": "react", "target": 1, "emoji": "👍👍"}, "bad_request"),
    ({"type": "react", "target": 1, "emoji": "x" * 65}, "bad_request"),
    ({"type": "react", "target": 1}, "bad_request"),
    ({"type": "edit", "body": "x"}, "bad_request"),
    ({"type": "delete", "target": -1}, "bad_request"),
    ({"type": "react", "target": 1, "emoji": "👍", "on": "yes"}, "bad_request"),
]


async def test_bad_changes_are_refused_with_their_code_and_change_nothing(cluster: RunningCluster) -> None:
    r = room()
    owner_token, other_token = cluster.tokens("v2-owner", "v2-other")
    owner = await Client.open(cluster.node_port(0), owner_token)
    other = await Client.open(cluster.node_port(1), other_token)
    await owner.subscribe(r)
    await ask(owner, "p", type="publish", room=r, body="original")
    await ask(owner, "r", type="react", room=r, target=1, emoji="🎉")
    for i, (frame, code) in enumerate(BAD_CHANGES):
        # Spaced below the change frames' budgets: each case is one honest mistake.
        answer = await ask(other, f"bad{i}", room=r, **frame)
        assert (answer["type"], answer["code"]) == ("error", code), (frame, answer)
        if i % 3 == 2:
            await ask(other, f"ping{i}", type="ping")
    history = await ask(other, "h", type="history", room=r)
    assert [(m["seq"], m["body"]) for m in history["messages"]] == [(1, "original")]
    assert history["messages"][0]["reactions"] == {"🎉": ["v2-owner"]}
    assert (await ask(other, "ping", type="ping"))["type"] == "pong"  # the socket stays open
    await owner.close()
    await other.close()


def api(cluster: RunningCluster, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{cluster.port}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def test_a_ban_evicts_on_every_node_within_a_second_and_holds_until_unbanned(cluster: RunningCluster) -> None:
    r = room()
    mod_token, bad_token = cluster.tokens("v2-mod", "v2-bad")
    with api(cluster, mod_token) as mod:
        assert mod.post(f"/api/rooms/{r}/join").json()["role"] == "owner"
        sockets = [await Client.open(cluster.node_port(i), bad_token) for i in range(3)]
        for socket in sockets:
            assert (await socket.subscribe(r))["type"] == "subscribed"
        started = time.monotonic()
        answer = mod.post(f"/api/rooms/{r}/moderation", json={"action": "ban", "user": "v2-bad"})
        assert answer.status_code == 200, answer.text
        for socket in sockets:
            evicted = await socket.until(lambda f: f["type"] == "error" and f.get("room") == r, timeout=5)
            assert evicted["code"] == "forbidden" and "ref" not in evicted
            assert evicted["detail"] == f"you are banned from {r}"
        assert time.monotonic() - started < 1.5
        assert (await sockets[0].subscribe(r))["code"] == "forbidden"
        refused = await ask(sockets[1], "p", type="publish", room=r, body="let me back")
        assert refused["code"] == "forbidden"
        assert mod.post(f"/api/rooms/{r}/moderation", json={"action": "unban", "user": "v2-bad"}).status_code == 200
        assert (await sockets[2].subscribe(r))["type"] == "subscribed"
        log = cluster.shell(
            "from chatcluster.models import ModerationAction\n"
            f"print([a.action for a in ModerationAction.objects.filter(room__slug={r!r}).order_by('id')])"
        )
        assert log.strip() == "['ban', 'unban']"
        for socket in sockets:
            await socket.close()


async def test_mute_and_slow_mode_hold_on_every_node(cluster: RunningCluster) -> None:
    r = room()
    mod_token, loud_token, quiet_token = cluster.tokens("v2-mod2", "v2-loud", "v2-quiet")
    with api(cluster, mod_token) as mod, api(cluster, loud_token) as loud_api:
        mod.post(f"/api/rooms/{r}/join")
        loud = await Client.open(cluster.node_port(1), loud_token)
        await loud.subscribe(r)
        assert (await ask(loud, "p0", type="publish", room=r, body="first"))["type"] == "ack"
        # Anyone else may not moderate.
        assert (
            loud_api.post(f"/api/rooms/{r}/moderation", json={"action": "mute", "user": "v2-mod2"}).status_code == 403
        )
        assert mod.post(f"/api/rooms/{r}/moderation", json={"action": "mute", "user": "v2-loud"}).status_code == 200
        for ref, frame in (
            ("p1", {"type": "publish", "body": "muted?"}),
            ("e1", {"type": "edit", "target": 1, "body": "muted?"}),
            ("r1", {"type": "react", "target": 1, "emoji": "👍"}),
        ):
            assert (await ask(loud, ref, room=r, **frame))["code"] == "forbidden"
        mod.post(f"/api/rooms/{r}/moderation", json={"action": "unmute", "user": "v2-loud"})
        answer = mod.post(f"/api/rooms/{r}/moderation", json={"action": "slow", "seconds": 30})
        assert answer.json() == {"room": r, "action": "slow", "seconds": 30}
        quiet = await Client.open(cluster.node_port(1), quiet_token)
        assert (await ask(quiet, "q1", type="publish", room=r, body="one"))["type"] == "ack"
        other_node = await Client.open(cluster.node_port(2), quiet_token)
        slowed = await ask(other_node, "q2", type="publish", room=r, body="two")
        assert slowed["code"] == "rate_limited" and 25 < slowed["retry_after"] <= 30
        # The loud one's message before slow mode began counts too.
        assert (await ask(loud, "p2", type="publish", room=r, body="three"))["code"] == "rate_limited"
        # Moderators are exempt.
        mod_socket = await Client.open(cluster.node_port(0), mod_token)
        for ref in ("m1", "m2"):
            assert (await ask(mod_socket, ref, type="publish", room=r, body=ref))["type"] == "ack"
        for client in (loud, quiet, other_node, mod_socket):
            await client.close()


async def test_a_mention_counts_for_a_reader_until_read_and_not_for_an_outsider(cluster: RunningCluster) -> None:
    r = room()
    ann_token, bob_token = cluster.tokens("v2-men-ann", "v2-men-bob")
    with api(cluster, ann_token) as ann_api, api(cluster, bob_token) as bob_api:
        bob_api.post(f"/api/rooms/{r}/join")
        ann = await Client.open(cluster.node_port(0), ann_token)
        await ask(ann, "p1", type="publish", room=r, body="hi @v2-men-bob, and @nobody-here")
        last = await ask(ann, "p2", type="publish", room=r, body="again @v2-men-bob.")
        joined = {room["slug"]: room for room in bob_api.get("/api/rooms?scope=joined").json()["rooms"]}
        assert (joined[r]["mentions"], joined[r]["unread"]) == (2, 2)
        bob_api.post(f"/api/rooms/{r}/read", json={"seq": last["seq"]})
        joined = {room["slug"]: room for room in bob_api.get("/api/rooms?scope=joined").json()["rooms"]}
        assert (joined[r]["mentions"], joined[r]["unread"]) == (0, 0)
        secret = ann_api.post("/api/rooms", json={"slug": r + "-p", "private": True}).json()["slug"]
        await ask(ann, "p3", type="publish", room=secret, body="@v2-men-bob cannot read this")
        count = bob_api.get("/api/rooms?scope=joined").json()["rooms"]
        assert secret not in {room["slug"] for room in count}
        outsider = cluster.shell(
            f"from chatcluster.models import Mention\nprint(Mention.objects.filter(room__slug={secret!r}).count())"
        )
        assert outsider.strip() == "0"
        await ann.close()


async def test_a_dm_begun_by_someone_else_is_announced_to_the_others_open_sockets(cluster: RunningCluster) -> None:
    ann_token, bob_token, cat_token = cluster.tokens("v2-dm-ann", "v2-dm-bob", "v2-dm-cat")
    bob_sockets = [await Client.open(cluster.node_port(i), bob_token) for i in (1, 2)]
    cat = await Client.open(cluster.node_port(0), cat_token)
    with api(cluster, ann_token) as ann:
        answer = ann.post("/api/dms", json={"users": ["v2-dm-bob"]})
        assert answer.status_code == 200, answer.text
        slug = answer.json()["room"]
    for socket in bob_sockets:
        assert await socket.until(lambda f: f["type"] == "added", timeout=5) == {"type": "added", "room": slug}
        assert (await socket.subscribe(slug))["type"] == "subscribed"
    assert (await ask(cat, "ping", type="ping"))["type"] == "pong"
    assert not [f for f in cat.frames if f["type"] == "added"]
    for socket in (*bob_sockets, cat):
        await socket.close()
