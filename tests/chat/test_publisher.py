from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from chatcluster import publisher as publisher_module
from chatcluster.errors import ChatError
from chatcluster.models import Message
from chatcluster.publisher import Publisher
from chatcluster.services.messages import PublishRequest

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
