"""ASGI entry point: HTTP goes to Django, `/ws/` to the chat consumer."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.admission import AdmissionMiddleware  # noqa: E402
from chat.consumers import ChatConsumer  # noqa: E402
from chat.ws_auth import WebSocketAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AdmissionMiddleware(WebSocketAuthMiddleware(URLRouter([path("ws/", ChatConsumer.as_asgi())]))),
    }
)
