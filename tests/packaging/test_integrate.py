"""docs/integrate.md, followed step by step in a fresh `startproject`, then a 2-node cluster of it.

The wheel goes into a venv of its own, offline, from the wheels `make setup` fetched. The
host project also has a `chat` app and a custom user model of its own, as real projects
do: the app must clash with neither. The code of each step comes from the document
itself, so the document cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from chatcluster.conf import KEYS
from tests.cluster import http_status, pick_base_port
from tests.packaging.conftest import ROOT

pytestmark = [pytest.mark.cluster]

DOC = ROOT / "docs" / "integrate.md"
SMOKE = ROOT.parent / "shared" / "contract-smoke.py"
WHEELHOUSE = ROOT / ".local" / "wheelhouse"
STEP = re.compile(r"<!-- integrate: (append|write|run)(?: (\S+))? -->\n```\w*\n(.*?)```", re.S)

# The host's own apps: a `chat` app with a Room model, and a custom user model.
HOST_APPS = {
    "accounts/models.py": (
        "from django.contrib.auth.models import AbstractUser\n\n\nclass User(AbstractUser):\n    pass\n"
    ),
    "chat/models.py": (
        "from django.conf import settings\nfrom django.db import models\n\n\n"
        "class Room(models.Model):\n"
        "    name = models.CharField(max_length=50)\n"
        "    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name='rooms')\n"
    ),
}
HOST_SETTINGS = '\nINSTALLED_APPS += ["accounts", "chat"]\nAUTH_USER_MODEL = "accounts.User"\n'


@dataclass
class Host:
    site: Path
    python: Path
    env: dict[str, str]
    port: int = 0
    # The private Redis `runcluster` started, as it prints it: host code outside the nodes uses it too.
    redis_url: str = ""

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.python), *args], cwd=self.site, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def shell(self, code: str) -> str:
        """`manage.py shell -c code` as host code outside the nodes, on the cluster's Redis."""
        result = subprocess.run(
            [str(self.python), "manage.py", "shell", "--no-imports", "-c", code],
            cwd=self.site,
            env=self.env | {"REDIS_URL": self.redis_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{code} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


def steps() -> list[tuple[str, str, str]]:
    return [(m[1], m[2] or "", m[3]) for m in STEP.finditer(DOC.read_text())]


def test_the_document_gives_the_settings_urls_router_and_commands_as_code() -> None:
    assert [(kind, path) for kind, path, _ in steps()] == [
        ("append", "mysite/settings.py"),
        ("write", "mysite/urls.py"),
        ("write", "mysite/asgi.py"),
        ("run", ""),
    ]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Host:
    """A fresh project with the wheel installed and steps 1 to 4 of the document applied."""
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"{WHEELHOUSE} is missing: `make setup` fetches the wheels a host project installs")
    site = tmp_path_factory.mktemp("host") / "site"
    site.mkdir()
    # A host's environment: none of this test run's own settings leak in.
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith(("DJANGO_", "DATABASE_"))}
    env.pop("PYTHONPATH", None)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(site / ".venv")], check=True)
    python = site / ".venv" / "bin" / "python"
    # Step 1, offline: pip from this venv installs into the fresh one.
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index", "--no-compile"]
    subprocess.run(
        [*install, "--find-links", str(WHEELHOUSE), f"{wheel}[local,client]"],
        check=True,
        capture_output=True,
        env=env,
    )
    made = Host(site=site, python=python, env=env)
    made.run("-m", "django", "startproject", "mysite", ".")
    for app, source in HOST_APPS.items():
        made.run("manage.py", "startapp", app.split("/")[0])
        (site / app).write_text(source)
    with (site / "mysite" / "settings.py").open("a") as settings_file:
        settings_file.write(HOST_SETTINGS)
    for kind, path, code in steps():
        if kind == "append":
            with (site / path).open("a") as target:
                target.write("\n" + code)
        elif kind == "write":
            (site / path).write_text(code)
    made.run("manage.py", "makemigrations", "accounts", "chat")
    return made


@pytest.fixture(scope="module")
def cluster(host: Host) -> Iterator[Host]:
    """Step 5: the document's commands, on free ports."""
    (run,) = [code for kind, _, code in steps() if kind == "run"]
    migrate, start = [line.split() for line in run.strip().splitlines()]
    assert migrate[0] == start[0] == "python"
    host.run(*migrate[1:])
    host.port = pick_base_port(2)
    args = [str(host.port) if arg == "8000" else arg for arg in start[1:]]
    process = subprocess.Popen(
        [str(host.python), *args],
        cwd=host.site,
        env=host.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    try:
        assert http_status(f"http://127.0.0.1:{host.port}/readyz") == 200, "".join(lines)
        printed = re.search(r"redis://\S+", "".join(lines))
        assert printed, "".join(lines)
        host.redis_url = printed[0]
        yield host
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_the_wheel_installs_offline_beside_a_chat_app_and_a_custom_user_model_of_the_host(host: Host) -> None:
    assert (
        "No broken requirements"
        in subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(host.python), "check"], capture_output=True, text=True
        ).stdout
    )
    host.run("manage.py", "check", "--fail-level", "WARNING")
    where = host.run("-c", "import chatcluster; print(chatcluster.__file__)")
    assert ".venv/lib/" in where and str(ROOT) not in where


def test_the_contract_smoke_passes_against_a_two_node_cluster_of_the_host_project(cluster: Host) -> None:
    if not SMOKE.exists():
        pytest.skip(f"{SMOKE} is not on this machine")
    result = subprocess.run(
        [sys.executable, str(SMOKE), "--port", str(cluster.port), "--nodes", "2"],
        cwd=cluster.site,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all passed" in result.stdout


def test_host_code_publishes_through_the_python_api_to_sockets_on_every_node(cluster: Host) -> None:
    (token,) = cluster.run("manage.py", "chat_token", "reader", "--create").split()
    cluster.shell("from accounts.models import User; User.objects.create_user('bot')")

    async def scenario() -> dict[str, object]:
        url = f"ws://127.0.0.1:{cluster.port + 2}/ws/?token={token}"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "subscribe", "room": "deploys"}))
            async with asyncio.timeout(10):
                while json.loads(await ws.recv())["type"] != "subscribed":
                    pass
                code = (
                    "from accounts.models import User\n"
                    "from chatcluster.host import room_publish_sync, room_presence_sync\n"
                    "bot = User.objects.get(username='bot')\n"
                    "print(room_publish_sync(room='deploys', user=bot, body='v2 is live').seq)\n"
                    "print(room_presence_sync(room='deploys'))\n"
                )
                out = await asyncio.to_thread(cluster.shell, code)
                assert out.split("\n")[:2] == ["1", "['reader']"], out
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "message":
                        return frame

    frame = asyncio.run(scenario())
    assert (frame["seq"], frame["user"], frame["body"]) == (1, "bot", "v2 is live")
