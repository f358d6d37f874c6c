"""docs/integrate.md, followed step by step in a fresh `startproject`, then a 2-node cluster of it.

The wheel goes into a venv of its own, offline, from the wheels `make setup` fetched. The
host project also has a `chat` app and a custom user model of its own, as real projects
do: the app must clash with neither. The code of each step comes from the document
itself, so the document cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import websockets

from tests.cluster import http_status, pick_base_port
from tests.packaging.host import ROOT, Host, steps

pytestmark = [pytest.mark.cluster]

SMOKE = ROOT.parent / "shared" / "contract-smoke.py"


def test_the_document_gives_the_settings_urls_router_and_commands_as_code() -> None:
    assert [(kind, path) for kind, path, _ in steps()] == [
        ("append", "mysite/settings.py"),
        ("write", "mysite/urls.py"),
        ("write", "mysite/asgi.py"),
        ("run", ""),
    ]


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
                    "bot = User.objects.get_or_create(username='bot')[0]\n"
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
