from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from chatcluster import publisher as publisher_module
from chatcluster.errors import ChatError
from chatcluster.models import Message
from chatcluster.publisher import Publisher
from chatcluster.services.messages import PublishRequest
from tests.cluster import RunningCluster

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the publisher writes (the real function does the writing)."""
    sizes: list[int] = []
    real = publisher_module.message_publish_batch

    def counted(*, requests: list[PublishRequest]) -> object:
        sizes.append(len(requests))
        return real(requests=requests)

    monkeypatch.setattr(publisher_module, "message_publish_batch", counted)
    return sizes


async def test_concurrent_publishes_share_batches_and_keep_their_order(batches: list[int], chat_conf: Any) -> None:
    chat_conf.CHAT_PUBLISH_RATE = 0
    alice = await sync_to_async(User.objects.create_user)("alice")
    publisher = Publisher()
    posted = await asyncio.gather(
        *(publisher.publish(PublishRequest(slug="a", author=alice, body=f"m{i}")) for i in range(50))
    )
    assert [p.seq for p in posted] == list(range(1, 51))
    assert sum(batches) == 50 and len(batches) < 50
    assert await sync_to_async(Message.objects.count)() == 50


async def test_a_refusal_reaches_only_its_own_publisher(batches: list[int]) -> None:
    alice = await sync_to_async(User.objects.create_user)("alice")
    publisher = Publisher()
    good, bad = await asyncio.gather(
        publisher.publish(PublishRequest(slug="a", author=alice, body="fine")),
        publisher.publish(PublishRequest(slug="a", author=alice, body=" ")),
        return_exceptions=True,
    )
    assert not isinstance(good, BaseException) and good.seq == 1
    assert isinstance(bad, ChatError) and bad.code == "bad_request"


async def test_publishes_past_the_users_budget_are_refused_within_the_batch(batches: list[int], chat_conf: Any) -> None:
    chat_conf.CHAT_PUBLISH_RATE, chat_conf.CHAT_PUBLISH_BURST = 1, 3
    alice = await sync_to_async(User.objects.create_user)("alice")
    publisher = Publisher()
    outcomes = await asyncio.gather(
        *(publisher.publish(PublishRequest(slug="a", author=alice, body=f"m{i}")) for i in range(5)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ChatError)]
    assert len(refused) == 2 and all(e.code == "rate_limited" and e.retry_after for e in refused)
    assert sum(batches) == 3


@pytest.mark.cluster
async def test_forty_concurrent_http_publishes_on_one_node_are_all_stored(cluster: RunningCluster) -> None:
    # The first request used to start the node's writer inside its own context; once that
    # request ended, later batches failed with "CurrentThreadExecutor already quit" (500).
    room = "http-" + uuid.uuid4().hex[:8]
    keys = cluster.shell(
        "from django.contrib.auth.models import User\n"
        "from chatcluster.services.apikeys import apikey_create\n"
        "for i in range(40):\n"
        f"    u = User.objects.get_or_create(username=f'{room}-{{i}}')[0]\n"
        "    print(apikey_create(name='burst', user=u)[1])\n"
    ).split()
    url = f"http://127.0.0.1:{cluster.node_port(0)}/api/rooms/{room}/messages"
    async with httpx.AsyncClient(timeout=30) as http:
        for attempt in range(2):  # the second burst comes after the first burst's requests ended
            answers = await asyncio.gather(
                *(http.post(url, json={"body": f"m{attempt}"}, headers={"Authorization": f"Bearer {k}"}) for k in keys)
            )
            assert [a.status_code for a in answers] == [201] * 40, [a.text for a in answers if a.status_code != 201]
    assert sorted(a.json()["seq"] for a in answers) == list(range(41, 81))
    database = cluster.env["DATABASE_URL"]
    if database.startswith("postgres"):
        # Each request ran its sync code on a thread of its own: a connection left open
        # there is never reused. Before, all 80 lingered and used up PostgreSQL.
        import psycopg

        from tests.cluster import admin_dsn

        with psycopg.connect(admin_dsn(), autocommit=True) as admin:
            (open_now,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database.rsplit("/", 1)[1]]
            ).fetchone()  # type: ignore[misc]
        assert open_now <= 30, f"{open_now} connections still open to the cluster's database"


async def test_http_publishes_and_their_sync_receivers_outlive_the_request_that_started_the_writer() -> None:
    # Django runs each ASGI request in a ThreadSensitiveContext that ends with it. The
    # node's writer (and the signals it sends) used to start inside the first request's
    # context, so a sync message_posted receiver failed once that request had ended.
    from channels.testing import HttpCommunicator

    from chatcluster.signals import message_posted
    from project.asgi import application

    keys = [await sync_to_async(_key_for)(f"writer-{i}") for i in range(8)]
    heard: list[int] = []
    done = asyncio.Event()

    def receiver(sender: Any, *, seq: int, **kwargs: Any) -> None:
        heard.append(seq)
        if len(heard) == 16:
            done.set()

    async def post(key: str, body: str) -> int:
        communicator = HttpCommunicator(
            application,
            "POST",
            "/api/rooms/http-signals/messages",
            body=json.dumps({"body": body}).encode(),
            headers=[
                (b"host", b"localhost"),
                (b"authorization", f"Bearer {key}".encode()),
                (b"content-type", b"application/json"),
            ],
        )
        response = await communicator.get_response(timeout=10)
        return int(response["status"])

    message_posted.connect(receiver, weak=False)
    try:
        for round_ in range(2):  # the second round starts after every request of the first ended
            assert await asyncio.gather(*(post(key, f"r{round_}") for key in keys)) == [201] * 8
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        message_posted.disconnect(receiver)
    assert sorted(heard) == list(range(1, 17))


def _key_for(username: str) -> str:
    from chatcluster.services.apikeys import apikey_create

    user, _ = User.objects.get_or_create(username=username)
    return apikey_create(user=user, name="t")[1]
