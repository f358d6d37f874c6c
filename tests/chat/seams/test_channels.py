"""chat/seams/channels.py: the consumer's `dispatch` override still sits where channels routes
messages, and `run_direct` still does what channels' `AsyncConsumer.__call__` does for it."""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from typing import Any

from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from chatcluster.consumers import ChatConsumer
from chatcluster.seams.channels import dispatch_direct, run_direct
from tests.chat.seams.checks import params, source_has

NEEDED_BY = "ChatConsumer.dispatch (chat/seams/channels.py)"
RUN = "chat/seams/channels.py run_direct (ChatConsumer.__call__, idle memory per socket)"


def test_channels_still_routes_every_message_through_dispatch() -> None:
    params(AsyncConsumer.dispatch, ["self", "message"], needed_by=NEEDED_BY)
    source_has(AsyncConsumer.__call__, "self.dispatch", needed_by=NEEDED_BY)


def test_handlers_are_still_named_after_the_message_type() -> None:
    for kind in ("websocket.connect", "websocket.receive", "websocket.disconnect"):
        assert get_handler_name({"type": kind}) == kind.replace(".", "_"), (
            f"channels.consumer.get_handler_name now maps {kind} differently: {NEEDED_BY} copies its rule"
        )


async def test_dispatch_direct_runs_the_handler_and_ignores_unknown_types() -> None:
    seen: list[dict[str, Any]] = []

    class Consumer:
        async def websocket_receive(self, message: dict[str, Any]) -> None:
            seen.append(message)

    await dispatch_direct(Consumer(), {"type": "websocket.receive", "text": "x"})
    await dispatch_direct(Consumer(), {"type": "websocket.unknown"})
    assert seen == [{"type": "websocket.receive", "text": "x"}]


def test_an_unconfigured_layer_alias_still_means_no_channel_per_socket() -> None:
    assert get_channel_layer(ChatConsumer.channel_layer_alias) is None, (
        "channels.layers.get_channel_layer no longer returns None for an unknown alias: "
        "ChatConsumer.channel_layer_alias relies on it to give sockets no channel of their own"
    )


def test_the_consumer_run_is_still_what_run_direct_copies() -> None:
    params(AsyncConsumer.__call__, ["self", "scope", "receive", "send"], needed_by=RUN)
    for fragment in (
        "self.scope = scope",
        "self.channel_layer = get_channel_layer(self.channel_layer_alias)",
        "if self.channel_layer is not None:",
        "self.base_send = send",
        "await await_many_dispatch([receive], self.dispatch)",
        "except StopConsumer:",
    ):
        source_has(AsyncConsumer.__call__, fragment, needed_by=RUN)
    # run_direct sets what __call__ sets without a layer; anything new must be copied too.
    tree = ast.parse(textwrap.dedent(inspect.getsource(AsyncConsumer.__call__)))
    stored = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and getattr(node.value, "id", "") == "self"
    }
    assert stored <= {"scope", "channel_layer", "channel_name", "channel_receive", "base_send"}, (
        f"channels.consumer.AsyncConsumer.__call__ now sets self.{sorted(stored)}: {RUN} must set them too"
    )
    assert not AsyncWebsocketConsumer._sync, f"AsyncWebsocketConsumer now wraps send for sync use: {RUN}"
    assert "__call__" not in vars(AsyncWebsocketConsumer), f"AsyncWebsocketConsumer now has its own __call__: {RUN}"


async def test_run_direct_dispatches_in_order_until_stop_consumer() -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    seen: list[str] = []

    class Consumer:
        async def dispatch(self, message: dict[str, Any]) -> None:
            seen.append(message["type"])
            if message["type"] == "websocket.disconnect":
                raise StopConsumer

    consumer: Any = Consumer()
    for kind in ("websocket.connect", "websocket.receive", "websocket.disconnect", "websocket.receive"):
        inbox.put_nowait({"type": kind})
    send = object()
    await asyncio.wait_for(run_direct(consumer, {"type": "websocket"}, inbox.get, send), 1)
    assert seen == ["websocket.connect", "websocket.receive", "websocket.disconnect"]
    assert (consumer.scope, consumer.channel_layer, consumer.base_send) == ({"type": "websocket"}, None, send)
