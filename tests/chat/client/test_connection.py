"""The client against a real cluster: 2 daphne nodes, Caddy, and a Redis of the cluster's own."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from chatcluster.client import (
    AuthenticationError,
    Client,
    Delete,
    Edit,
    Event,
    Message,
    Presence,
    React,
    ServerError,
    StateChange,
    Typing,
)
from tests.cluster import RunningCluster, start_cluster

pytestmark = [pytest.mark.cluster]

USERS = ["cl-alice", "cl-bob", "cl-carol", "cl-dave", "cl-erin", "cl-frank", "cl-gina", "cl-hank"]
# A dropped user's presence and a drain end within a second or two; publishers are machines.
ENV = {
    "PRESENCE_TTL": "4",
    "PRESENCE_GRACE": "2",
    "DRAIN_GRACE": "1",
    "CHAT_PUBLISH_RATE": "1000",
    "CHAT_PUBLISH_BURST": "1000",
}
WITHIN = 10.0


@dataclass
class Nodes:
    running: RunningCluster
    tokens: dict[str, str]

    def url(self, index: int | None = None) -> str:
        """A node's /ws/, or the balancer's when `index` is None."""
        port = self.running.port if index is None else self.running.node_port(index)
        return f"ws://127.0.0.1:{port}/ws/"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    running = start_cluster(tmp_path_factory.mktemp("client"), nodes=2, env=ENV, private_redis=True)
    try:
        yield Nodes(running, dict(zip(USERS, running.tokens(*USERS), strict=True)))
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def _both_nodes_ready(nodes: Nodes) -> None:
    for index in range(2):
        nodes.running.wait_node_ready(index)


def room() -> str:
    return "cl-" + uuid.uuid4().hex[:10]


class Watch:
    """A client's events as a test reads them: every one is kept in `seen`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[Event] = []

    async def until(self, wanted: Callable[[Event], bool], timeout: float = WITHIN) -> Event:
        """The first event from here on that `wanted` accepts."""
        async with asyncio.timeout(timeout):
            async for event in self.client:
                self.seen.append(event)
                if wanted(event):
                    return event
        raise AssertionError(f"the client's events ended: {self.seen}")

    async def state(self, state: str) -> StateChange:
        change = await self.until(lambda e: isinstance(e, StateChange) and e.state == state)
        assert isinstance(change, StateChange)
        return change

    async def messages(self, r: str, upto: int) -> list[Message]:
        """Every message of `r` handed out, once the one with seq `upto` is."""
        if upto not in [m.seq for m in self._messages(r)]:
            await self.until(lambda e: isinstance(e, Message) and e.room == r and e.seq == upto)
        return self._messages(r)

    def _messages(self, r: str) -> list[Message]:
        return [e for e in self.seen if isinstance(e, Message) and e.room == r]

    async def stream(self, r: str, upto: int) -> list[tuple[str, int, str | int]]:
        """The seq stream of `r` handed out, once seq `upto` is: (type, seq, body or target) each."""
        if upto not in [e.seq for e in self._stream(r)]:
            await self.until(lambda e: isinstance(e, Message | Edit | Delete | React) and e.room == r and e.seq == upto)
        return [(type(e).__name__, e.seq, e.body if isinstance(e, Message) else e.target) for e in self._stream(r)]

    def _stream(self, r: str) -> list[Message | Edit | Delete | React]:
        return [e for e in self.seen if isinstance(e, Message | Edit | Delete | React) and e.room == r]


async def test_publish_returns_the_acked_seq_and_a_client_on_the_other_node_gets_every_message_in_order(
    nodes: Nodes,
) -> None:
    r = room()
    async with (
        Client(nodes.url(0), nodes.tokens["cl-alice"]) as alice,
        Client(nodes.url(1), nodes.tokens["cl-bob"]) as bob,
    ):
        assert (await alice.subscribe(r)).seq == 0
        await bob.subscribe(r)
        seqs = await asyncio.gather(*(alice.publish(r, f"m{i}") for i in range(5)))
        assert seqs == [1, 2, 3, 4, 5]
        got = await Watch(bob).messages(r, upto=5)
        assert [(m.seq, m.user, m.body) for m in got] == [(i + 1, "cl-alice", f"m{i}") for i in range(5)]
        assert [m.seq for m in await Watch(alice).messages(r, upto=5)] == [1, 2, 3, 4, 5]
        assert [m.body for m in await bob.history(r, before=5, limit=2)] == ["m2", "m3"]


async def test_the_same_key_twice_stores_one_message_and_acks_its_first_seq(nodes: Nodes) -> None:
    r = room()
    async with (
        Client(nodes.url(0), nodes.tokens["cl-carol"]) as first,
        Client(nodes.url(1), nodes.tokens["cl-carol"]) as retry,
        Client(nodes.url(1), nodes.tokens["cl-dave"]) as reader,
    ):
        await reader.subscribe(r)
        assert await first.publish(r, "once", key="same-key") == 1
        assert await retry.publish(r, "once again", key="same-key") == 1
        assert await first.publish(r, "after") == 2
        assert [(m.seq, m.body) for m in await Watch(reader).messages(r, upto=2)] == [(1, "once"), (2, "after")]
        assert [m.body for m in await reader.history(r)] == ["once", "after"]


async def test_a_replay_of_what_the_client_holds_is_dropped_by_seq(nodes: Nodes) -> None:
    r = room()
    async with Client(nodes.url(0), nodes.tokens["cl-erin"]) as client:
        watch = Watch(client)
        await client.subscribe(r)
        for i in range(3):
            await client.publish(r, f"m{i}")
        await watch.messages(r, upto=3)
        # The server replays 1..3 before it answers; the client already handed them out.
        assert (await client.subscribe(r, since=0)).recovered is True
        assert client.repeats == 3
        await client.publish(r, "new")
        assert [(m.seq, m.body) for m in await watch.messages(r, upto=4)] == [
            (1, "m0"),
            (2, "m1"),
            (3, "m2"),
            (4, "new"),
        ]


async def test_an_unsubscribed_room_is_forgotten_and_its_messages_stop(nodes: Nodes) -> None:
    left, kept = room(), room()
    async with Client(nodes.url(0), nodes.tokens["cl-carol"]) as client:
        watch = Watch(client)
        await client.subscribe(left)
        await client.subscribe(kept)
        await client.unsubscribe(left)
        assert client.last_seq(left) is None and client.presence(left) == []
        assert await client.publish(left, "not for me") == 1
        assert await client.publish(kept, "for me") == 1
        await watch.messages(kept, upto=1)
        assert [m.room for m in watch.seen if isinstance(m, Message)] == [kept]


async def test_the_event_iterator_hands_out_state_presence_and_typing(nodes: Nodes) -> None:
    r = room()
    async with Client(nodes.url(0), nodes.tokens["cl-alice"]) as alice:
        watch = Watch(alice)
        assert await watch.until(lambda e: True) == StateChange(state="online")
        assert (await alice.subscribe(r)).presence == ["cl-alice"]
        async with Client(nodes.url(1), nodes.tokens["cl-bob"]) as bob:
            await bob.subscribe(r)
            joined = await watch.until(lambda e: isinstance(e, Presence) and "cl-bob" in e.joined)
            assert joined == Presence(room=r, joined=["cl-bob"], left=[])
            await bob.typing(r)
            assert await watch.until(lambda e: isinstance(e, Typing)) == Typing(room=r, user="cl-bob")
        # A clean close (1000) leaves at once.
        left = await watch.until(lambda e: isinstance(e, Presence) and bool(e.left))
        assert left == Presence(room=r, joined=[], left=["cl-bob"])
        assert alice.presence(r) == ["cl-alice"]
    assert alice.state == "offline"


async def test_a_bad_token_stops_the_client_with_4401_and_says_what_to_do(nodes: Nodes) -> None:
    client = Client(nodes.url(0), "not-a-token")
    with pytest.raises(AuthenticationError, match=r"4401.*fresh token") as refused:
        await client.connect()
    assert refused.value.code == 4401
    events = []
    with pytest.raises(AuthenticationError):
        async for event in client:
            events.append(event)
    assert events == [StateChange(state="offline", code=4401, error=str(refused.value))]
    with pytest.raises(AuthenticationError):
        await client.publish("anywhere", "never sent")
    await client.close()


async def test_a_draining_node_closes_with_1012_and_the_client_is_back_at_once_on_another(nodes: Nodes) -> None:
    r = room()
    async with Client(nodes.url(), nodes.tokens["cl-erin"]) as client:  # through the balancer
        watch = Watch(client)
        assert client.node is not None
        drained = client.node
        await client.subscribe(r)
        await client.publish(r, "before")
        nodes.running.kill_node(nodes.running.cluster.node_ids().index(drained), signal.SIGTERM)
        closed = await watch.state("reconnecting")
        assert closed.code == 1012 and closed.retry_in is not None and closed.retry_in <= 0.3
        await watch.state("online")
        assert client.node != drained
        assert await client.publish(r, "after") == 2
        assert [(m.seq, m.body) for m in await watch.messages(r, upto=2)] == [(1, "before"), (2, "after")]


async def test_after_its_node_is_killed_the_client_resumes_with_since_and_gets_each_missed_message_once(
    nodes: Nodes,
) -> None:
    r = room()
    away = asyncio.Event()  # set once the publisher wrote while the listener was gone
    calls = 0

    async def token() -> str:
        # Each connect asks for a fresh token: after the first, wait until messages were missed.
        nonlocal calls
        calls += 1
        if calls > 1:
            await away.wait()
        return nodes.tokens["cl-frank"]

    async with Client(nodes.url(), token) as listener:  # through the balancer
        watch = Watch(listener)
        assert listener.node is not None
        killed = nodes.running.cluster.node_ids().index(listener.node)
        async with Client(nodes.url(1 - killed), nodes.tokens["cl-dave"]) as publisher:
            await listener.subscribe(r)
            assert [await publisher.publish(r, f"before {i}") for i in range(2)] == [1, 2]
            await watch.messages(r, upto=2)

            nodes.running.kill_node(killed)
            await watch.state("reconnecting")
            mine = asyncio.create_task(listener.publish(r, "written while away"))
            assert [await publisher.publish(r, f"missed {i}") for i in range(3)] == [3, 4, 5]
            away.set()

            assert await asyncio.wait_for(mine, WITHIN) == 6
            assert [(m.seq, m.body) for m in await watch.messages(r, upto=6)] == [
                (1, "before 0"),
                (2, "before 1"),
                (3, "missed 0"),
                (4, "missed 1"),
                (5, "missed 2"),
                (6, "written while away"),
            ]


async def test_edit_react_and_delete_reach_the_other_node_in_seq_order_and_history_has_the_final_state(
    nodes: Nodes,
) -> None:
    r = room()
    async with (
        Client(nodes.url(0), nodes.tokens["cl-gina"]) as gina,
        Client(nodes.url(1), nodes.tokens["cl-hank"]) as hank,
    ):
        watch = Watch(hank)
        await gina.subscribe(r)
        await hank.subscribe(r)
        assert [await gina.publish(r, "one"), await hank.publish(r, "two")] == [1, 2]
        assert await gina.edit(r, 1, "one, fixed") == 3
        assert await hank.react(r, 1, "👍") == 4
        assert await gina.react(r, 1, "👍") == 5
        assert await hank.react(r, 1, "👍") == 4  # already so: nothing stored, the seq that set it
        assert await hank.delete(r, 2) == 6
        assert await hank.delete(r, 2) == 6  # a repeat: the first delete's seq
        refusals: list[tuple[Callable[[], Awaitable[int]], str]] = [
            (lambda: hank.edit(r, 1, "not mine"), "forbidden"),
            (lambda: hank.delete(r, 1), "forbidden"),
            (lambda: hank.edit(r, 2, "deleted"), "not_found"),
            (lambda: gina.react(r, 1, "not an emoji"), "bad_request"),
        ]
        for call, code in refusals:
            with pytest.raises(ServerError) as refused:
                await call()
            assert refused.value.code == code

        assert await watch.stream(r, upto=6) == [
            ("Message", 1, "one"),
            ("Message", 2, "two"),
            ("Edit", 3, 1),
            ("React", 4, 1),
            ("React", 5, 1),
            ("Delete", 6, 2),
        ]
        changes = {e.seq: e for e in watch.seen if isinstance(e, Edit | React | Delete)}
        assert changes[3] == Edit(room=r, seq=3, target=1, user="cl-gina", body="one, fixed", ts=changes[3].ts)
        assert changes[4] == React(room=r, seq=4, target=1, user="cl-hank", emoji="👍", on=True, ts=changes[4].ts)
        assert changes[6] == Delete(room=r, seq=6, target=2, user="cl-hank", ts=changes[6].ts)
        assert hank.last_seq(r) == 6

        first, second = await hank.history(r)
        assert (first.seq, first.body, first.deleted, first.reactions) == (
            1,
            "one, fixed",
            False,
            {"👍": ["cl-hank", "cl-gina"]},
        )
        assert first.edited is not None
        assert (second.seq, second.body, second.deleted, second.edited, second.reactions) == (2, "", True, None, {})


async def test_a_client_away_while_messages_changed_resumes_with_since_and_gets_each_change_once(nodes: Nodes) -> None:
    r = room()
    away = asyncio.Event()
    calls = 0

    async def token() -> str:
        # The reconnect's token waits until the changes were made.
        nonlocal calls
        calls += 1
        if calls > 1:
            await away.wait()
        return nodes.tokens["cl-gina"]

    async with (
        Client(nodes.url(0), token) as listener,
        Client(nodes.url(1), nodes.tokens["cl-hank"]) as writer,
    ):
        watch = Watch(listener)
        await listener.subscribe(r)
        assert [await writer.publish(r, f"m{i}") for i in (1, 2)] == [1, 2]
        await watch.stream(r, upto=2)

        assert listener._ws is not None
        listener._ws.transport.abort()  # the socket dies under the client, with no close frame
        await watch.state("reconnecting")
        assert await writer.publish(r, "m3") == 3
        assert await writer.edit(r, 3, "m3, fixed") == 4
        assert await writer.react(r, 1, "🎉") == 5
        assert await writer.delete(r, 2) == 6
        assert listener.last_seq(r) == 2
        away.set()

        assert await watch.stream(r, upto=6) == [
            ("Message", 1, "m1"),
            ("Message", 2, "m2"),
            # Replayed in its current state, followed by its change as an event of its own.
            ("Message", 3, "m3, fixed"),
            ("Edit", 4, 3),
            ("React", 5, 1),
            ("Delete", 6, 2),
        ]
        replayed = next(e for e in watch.seen if isinstance(e, Message) and e.seq == 3)
        assert replayed.edited is not None and not replayed.deleted
        assert listener.repeats == 0
