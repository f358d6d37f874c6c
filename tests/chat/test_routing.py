"""chatcluster.routing composes with a host's own WebSocket consumers."""

from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from chatcluster.routing import ChatMiddlewareStack, websocket_urlpatterns
from tests.chat.test_consumers import ORIGIN, token_for

pytestmark = pytest.mark.django_db(transaction=True)


class WhoAmI(AsyncJsonWebsocketConsumer):
    """A host's own consumer: it says who the app's middleware found."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"user": user.get_username() if user.is_authenticated else None})


application = ProtocolTypeRouter(
    {"websocket": ChatMiddlewareStack(URLRouter([*websocket_urlpatterns, path("host/whoami/", WhoAmI.as_asgi())]))}
)


async def test_a_host_consumer_behind_the_stack_sees_the_token_user() -> None:
    ws = WebsocketCommunicator(application, f"/host/whoami/?token={await token_for('alice')}", headers=[ORIGIN])
    assert (await ws.connect())[0]
    assert await ws.receive_json_from(5) == {"user": "alice"}
    await ws.disconnect()


async def test_the_stack_refuses_nothing_itself_an_anonymous_socket_reaches_the_host_consumer() -> None:
    ws = WebsocketCommunicator(application, "/host/whoami/", headers=[ORIGIN])
    assert (await ws.connect())[0]
    assert await ws.receive_json_from(5) == {"user": None}
    await ws.disconnect()


async def test_the_apps_own_route_still_answers_through_the_same_router() -> None:
    ws = WebsocketCommunicator(application, f"/ws/?token={await token_for('bob')}", headers=[ORIGIN])
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "ping", "ref": "p"})
    assert await ws.receive_json_from(5) == {"type": "pong", "ref": "p"}
    await ws.disconnect()
