"""The asyncio client of the /ws/ protocol (docs/protocol.md): `pip install django-chatcluster[client]`.

    async with Client("ws://127.0.0.1:8000/ws/", token=fresh_token) as client:
        await client.subscribe("general")
        seq = await client.publish("general", "hello")
        async for event in client:
            ...

It reconnects with jittered backoff, resumes each room with `since`, hands out messages and
the changes to them (edit, delete, react) once and in order, and resends unacked publishes
with their idempotency key. `frames`
holds the typed frames and encoders on their own, for tools that bring their own socket.
It needs no Django.
"""

from chatcluster.client.connection import Client, TokenSource
from chatcluster.client.events import (
    AnswerLostError,
    AuthenticationError,
    ChatClientError,
    ClientClosedError,
    Event,
    Reset,
    ServerError,
    State,
    StateChange,
)
from chatcluster.client.frames import (
    Ack,
    Delete,
    Edit,
    Error,
    FrameError,
    History,
    HistoryMessage,
    Message,
    Pong,
    Presence,
    React,
    ServerFrame,
    Subscribed,
    Typing,
    Unknown,
    Unsubscribed,
)

__all__ = [
    "Ack",
    "AnswerLostError",
    "AuthenticationError",
    "ChatClientError",
    "Client",
    "ClientClosedError",
    "Delete",
    "Edit",
    "Error",
    "Event",
    "FrameError",
    "History",
    "HistoryMessage",
    "Message",
    "Pong",
    "Presence",
    "React",
    "Reset",
    "ServerError",
    "ServerFrame",
    "State",
    "StateChange",
    "Subscribed",
    "TokenSource",
    "Typing",
    "Unknown",
    "Unsubscribed",
]
