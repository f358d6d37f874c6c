#!/usr/bin/env python
"""Django's command-line utility, and the local launcher's entry point."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def ensure_local_secret_key() -> None:
    """Give a checkout without DJANGO_SECRET_KEY a private key of its own, kept untracked."""
    if os.environ.get("DJANGO_SECRET_KEY"):
        return
    path = Path(__file__).resolve().parent / ".local" / "secret_key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    ensure_local_secret_key()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
