"""client.js as an npm package: Node's test runner against a real 2-node cluster, its types, its tarball.

`node --test tests/js/` drives chat/static/chatcluster/client.js in Node 20 with the `ws` package
(tests/js/package.json, installed by `npm ci --prefix tests/js`); this module starts the
cluster, hands Node its address and tokens in the environment, and shows Node's report when
it fails. Without `node`, `npm` or tests/js/node_modules the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cluster import ROOT, RunningCluster

pytestmark = [pytest.mark.cluster]

JS_TESTS = ROOT / "tests" / "js"
PACKAGE = ROOT / "chat" / "static" / "chatcluster"
NODE = shutil.which("node")
NPM = shutil.which("npm")
TSC = JS_TESTS / "node_modules" / "typescript" / "bin" / "tsc"
SETUP_HINT = "run `npm ci --prefix tests/js` (make setup does when npm is installed)"

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: the JS client's tests need Node 20+")
needs_npm = pytest.mark.skipif(NPM is None, reason="npm is not installed: packing the JS client needs it")
needs_ws = pytest.mark.skipif(
    not (JS_TESTS / "node_modules" / "ws").is_dir(), reason=f"tests/js/node_modules/ws is missing: {SETUP_HINT}"
)
needs_tsc = pytest.mark.skipif(not TSC.is_file(), reason=f"tests/js/node_modules/typescript is missing: {SETUP_HINT}")

# Users of tests/js/client.test.mjs and changes.test.mjs: their own per test (js_kim's changes
# run one after the other), so no test meets another's rate limit.
TOKEN_USERS = ("js_alice", "js_bob", "js_dave", "js_erin", "js_frank", "js_gina", "js_hank", "js_ivy")
TOKEN_USERS += ("js_kim", "js_lee", "js_mia")
PASSWORD_USER = ("js_carol", "pw-for-js-tests-1")  # gets fresh tokens from POST /api/token
# npm without the network: no update check, audit or funding lookups.
NPM_ENV = {"npm_config_offline": "true", "npm_config_update_notifier": "false", "npm_config_audit": "false"}
NPM_ENV |= {"npm_config_fund": "false", "npm_config_loglevel": "error"}


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run a command; on a non-zero exit or past the timeout, fail with everything it printed."""
    try:
        done = subprocess.run(
            args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        printed = [
            out.decode(errors="replace") if isinstance(out, bytes) else out or "" for out in (exc.stdout, exc.stderr)
        ]
        pytest.fail(f"{' '.join(args)} ran past {timeout} s:\n" + "\n".join(printed))
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def js_cluster(cluster: RunningCluster) -> RunningCluster:
    """The suite's cluster: its first two nodes behind Caddy (no cluster of its own to start)."""
    return cluster


@needs_node
@needs_ws
def test_the_js_client_in_node_against_a_two_node_cluster(js_cluster: RunningCluster) -> None:
    username, password = PASSWORD_USER
    js_cluster.shell(
        f"from django.contrib.auth.models import User\nUser.objects.create_user({username!r}, password={password!r})\n"
    )
    tokens = dict(zip(TOKEN_USERS, js_cluster.tokens(*TOKEN_USERS), strict=True))
    session = js_cluster.login("js_page")  # the page's credentials: a session cookie
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    session.close()
    env = {
        "CHAT_HOST": "127.0.0.1",
        "CHAT_PORT": str(js_cluster.port),
        "CHAT_NODE_PORTS": f"{js_cluster.node_port(0)},{js_cluster.node_port(1)}",
        "CHAT_TOKENS": json.dumps(tokens),
        "CHAT_PASSWORD_USER": f"{username}:{password}",
        "CHAT_SESSION_COOKIE": cookie,
    }
    report = run([str(NODE), "--test", "--test-reporter=spec", "tests/js/"], cwd=ROOT, env=env, timeout=100)
    # The cluster's tests ran: not skipped for want of its address.
    assert "set CHAT_PORT" not in report, report


@needs_node
@needs_tsc
def test_the_type_declarations_check_strictly_in_node_and_in_a_browser_setting() -> None:
    for config in ("tsconfig.json", "tsconfig.dom.json"):
        run([str(NODE), str(TSC), "-p", config], cwd=JS_TESTS)


# The client and its sibling modules, without the page's own (app.js, ui/, ...).
PACKED = sorted(
    "README.md package.json client.js client.d.ts frames.d.ts order.js outbox.js policy.js requests.js".split()
)


@needs_node
@needs_npm
def test_the_package_packs_offline_with_only_the_client_and_installs_from_its_tarball(tmp_path: Path) -> None:
    packed = json.loads(run([str(NPM), "pack", "--json", "--pack-destination", str(tmp_path)], PACKAGE, NPM_ENV))
    assert len(packed) == 1
    assert packed[0]["name"] == "@chatcluster/client"
    assert sorted(f["path"] for f in packed[0]["files"]) == PACKED
    tarball = tmp_path / packed[0]["filename"]
    assert tarball.is_file()

    # Installed from the tarball, with the network off, it imports by name in Node.
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    run([str(NPM), "install", str(tarball)], app, NPM_ENV)
    installed = app / "node_modules" / "@chatcluster" / "client"
    assert sorted(p.name for p in installed.iterdir()) == PACKED
    script = """
      import { ChatClient, STATES, backoffDelay, randomId } from "@chatcluster/client";
      const client = new ChatClient({ url: async () => "ws://127.0.0.1:1/ws/", WebSocketImpl: class {} });
      let inside = "importable";
      try { await import("@chatcluster/client/order.js"); } catch (err) { inside = err.code; }
      console.log(JSON.stringify({ states: STATES, state: client.state, d: backoffDelay(0, () => 1),
        id: randomId().length, inside }));
    """
    out = json.loads(run([str(NODE), "--input-type=module", "-e", script], app))
    assert out == {
        "states": ["connecting", "online", "reconnecting", "catching-up", "offline"],
        "state": "connecting",
        "d": 500,
        "id": 24,
        "inside": "ERR_PACKAGE_PATH_NOT_EXPORTED",
    }

    # TypeScript finds the declarations through the package's "exports".
    if TSC.is_file():
        (app / "check.ts").write_text(
            'import { ChatClient, type EditFrame, type MessageFrame } from "@chatcluster/client";\n'
            "const client = new ChatClient();\n"
            'client.addEventListener("message", (ev) => {\n'
            "  const m: MessageFrame = ev.detail;\n"
            "  console.log(m.seq + 1, m.body.length);\n"
            "});\n"
            'client.addEventListener("edit", (ev) => {\n'
            "  const e: EditFrame = ev.detail;\n"
            "  console.log(e.target + 1, e.body.length);\n"
            "});\n"
            'void client.react("general", 1, "👍").then((ack) => console.log(ack.seq + 1));\n'
        )
        options = {"strict": True, "noEmit": True, "module": "nodenext", "lib": ["es2022", "dom"], "types": []}
        (app / "tsconfig.json").write_text(json.dumps({"compilerOptions": options, "files": ["check.ts"]}))
        run([str(NODE), str(TSC), "-p", "."], app)
