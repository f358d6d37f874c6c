"""ASGI entry point: HTTP goes to Django, WebSockets to the chat app's routes.

The same five lines a host project writes (docs/integrate.md).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Before anything imports models: it sets Django up.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatcluster.routing import ChatMiddlewareStack, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ChatMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
