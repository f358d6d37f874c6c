from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    # Not "chat": a host project may well have a `chat` app of its own (docs/integrate.md).
    name = "chatcluster"
    label = "chatcluster"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chatcluster import receivers  # noqa: F401 - connects them
