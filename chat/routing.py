"""What a host's ASGI router takes from the app: its WebSocket routes and its middleware.

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": ChatMiddlewareStack(URLRouter(websocket_urlpatterns + your_own_patterns)),
    })

The middleware only authenticates (a `?token=` or the session cookie) and admits;
it refuses nothing itself, so a host's own consumers behind it see `scope["user"]` as
with channels' AuthMiddlewareStack and decide for themselves.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from chatcluster.admission import AdmissionMiddleware
from chatcluster.consumers import ChatConsumer
from chatcluster.ws_auth import WebSocketAuthMiddleware

websocket_urlpatterns: list[URLPattern] = [path("ws/", ChatConsumer.as_asgi())]


def ChatMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - named like channels' AuthMiddlewareStack
    """Admission (the node's handshake rate) around authentication around `inner`."""
    return AdmissionMiddleware(WebSocketAuthMiddleware(inner))
