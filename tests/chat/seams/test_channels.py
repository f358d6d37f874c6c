"""chat/seams/channels.py: the consumer's `dispatch` override still sits where channels routes messages."""

from __future__ import annotations

from typing import Any

from channels.consumer import AsyncConsumer, get_handler_name
from channels.layers import get_channel_layer

from chat.consumers import ChatConsumer
from chat.seams.channels import dispatch_direct
from tests.chat.seams.checks import params, source_has

NEEDED_BY = "ChatConsumer.dispatch (chat/seams/channels.py)"


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
