"""Upkeep's lease renewal: a lapsed lease's entries are written back, even after a failed try."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import redis

from chatcluster import upkeep


async def test_a_write_back_that_fails_is_tried_again_at_the_next_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    node: Any = SimpleNamespace(feeds={}, sockets={}, started_at=0.0, unrestored_shards=set())
    lapsed = [[0], []]  # lapsed at the first renewal; the renewal itself made the lease live again
    tries: list[int] = []

    async def renew() -> list[int]:
        return lapsed.pop(0)

    async def restore(*, shard: int, entries: list[str]) -> list[tuple[str, str]]:
        tries.append(shard)
        if len(tries) == 1:
            raise redis.exceptions.ConnectionError("a blip")
        return []

    monkeypatch.setattr(upkeep, "liveness_renew", renew)
    monkeypatch.setattr(upkeep, "liveness_restore", restore)
    monkeypatch.setattr(upkeep, "held_entries", lambda node: [])
    with pytest.raises(redis.exceptions.ConnectionError):
        await upkeep.renew(node)
    await upkeep.renew(node)
    assert tries == [0, 0]
    assert node.unrestored_shards == set()
