"""The package as a client installs it: `pip install django-chatcluster[client]`, no Django set up."""

from __future__ import annotations

import os
import subprocess
import sys

import chatcluster.client

CHECK = """
import sys
import chatcluster.client
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
assert not loaded, loaded
"""


def test_the_client_imports_without_django() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", CHECK], env=env, check=True, timeout=60)


def test_every_public_name_is_exported() -> None:
    assert all(hasattr(chatcluster.client, name) for name in chatcluster.client.__all__)
