"""Serve one cluster node: daphne with send backpressure and a graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chatcluster.conf import chat_settings


class Command(BaseCommand):
    help = "Serve one node on HOST:PORT (what runcluster and the deploy files run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=chat_settings.NODE_PORT or 8001)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        if chat_settings.NODE_UVLOOP:
            # Before daphne creates the loop it runs Twisted on.
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        # The reactor must be installed before anything imports twisted.internet.reactor.
        from channels.routing import get_default_application

        from chatcluster.node import serve

        serve(application=get_default_application(), host=host, port=port)
