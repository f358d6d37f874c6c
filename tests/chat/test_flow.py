"""chat/flow.py's Gate: asyncio.Event's behaviour, with no waiter list while nobody waits."""

from __future__ import annotations

import asyncio

from chatcluster.flow import Gate


async def test_a_gate_wakes_its_waiters_and_keeps_nothing_when_idle() -> None:
    gate = Gate(is_open=True)
    assert gate.is_set() and await gate.wait()
    gate.clear()
    waiters = [asyncio.ensure_future(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True]
    assert gate._waiters is None


async def test_a_cancelled_waiter_leaves_the_gate_clean() -> None:
    gate = Gate()
    waiter = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert gate._waiters is None and not gate.is_set()
