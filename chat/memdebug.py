"""Memory debugging for one node, off unless CHAT_MEMORY_DEBUG names a directory.

Each SIGUSR2 writes `<dir>/census-<n>.json` (live objects per type, gc-tracked ones
only, with their shallow sizes) after a full collection. The first one also starts
tracemalloc, and every later one writes `<dir>/snapshot-<n>.pickle`: the allocations made
since the first signal that are still alive. `bench/memory_probe.py` signals once before
and once after opening its sockets and prints the difference per socket. (Tracing from the
first signal only keeps the node's startup and warm-up at full speed.)
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

from chatcluster.conf import chat_settings

logger = logging.getLogger(__name__)
_dumps = itertools.count(1)


def start(loop: asyncio.AbstractEventLoop) -> None:
    if not chat_settings.CHAT_MEMORY_DEBUG:
        return
    loop.add_signal_handler(signal.SIGUSR2, dump)
    logger.warning(
        "memory debugging on: SIGUSR2 writes a census and starts tracing, in %s", chat_settings.CHAT_MEMORY_DEBUG
    )


def dump() -> None:
    directory = Path(chat_settings.CHAT_MEMORY_DEBUG)
    directory.mkdir(parents=True, exist_ok=True)
    number = next(_dumps)
    gc.collect()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    census = {name: [counts[name], sizes[name]] for name in counts}
    (directory / f"census-{number}.json").write_text(json.dumps(census))
    (directory / f"sample-{number}.json").write_text(json.dumps(_sample(), indent=1))
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(directory / f"snapshot-{number}.pickle"))
    else:
        tracemalloc.start(chat_settings.CHAT_MEMORY_DEBUG_FRAMES)
    (directory / f"done-{number}").touch()
    logger.warning("memory snapshot %d written to %s", number, directory)


# One live instance of each of these, described attribute by attribute (shallow sizes).
SAMPLED = ("FlowControlledWebSocketProtocol", "ChatConsumer", "Server", "FlowControl")


def _sample() -> dict[str, object]:
    found: dict[str, object] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in SAMPLED and name not in found and isinstance(getattr(obj, "__dict__", None), dict):
            found[name] = obj
    out: dict[str, object] = {}
    for name, obj in found.items():
        attrs = vars(obj)
        out[name] = {
            "dict_bytes": sys.getsizeof(attrs),
            "keys": len(attrs),
            "attrs": {key: [type(value).__name__, sys.getsizeof(value)] for key, value in attrs.items()},
        }
        scope = attrs.get("scope")
        if isinstance(scope, dict):
            out[name + ".scope"] = {key: [type(v).__name__, sys.getsizeof(v)] for key, v in scope.items()}
    return out
