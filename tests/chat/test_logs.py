"""Log lines: JSON with the node id, and never a token, a key or a message body."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from chatcluster.conf import chat_settings
from chatcluster.logs import REDACTED, ContextFilter, redact
from tests.cluster import Client, RunningCluster


@pytest.fixture
def json_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the handler setup of settings.LOGGING with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    options = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.logs." + uuid.uuid4().hex[:6])
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_connect_line_with_a_token_is_logged_redacted_with_the_node_id(
    json_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_lines
    logger.info("WSCONNECT %s", "/ws/?token=abc.SECRET-1&x=1")
    (line,) = lines(stream)
    assert line["node_id"] == chat_settings.NODE_ID and line["level"] == "INFO"
    assert line["message"] == f"WSCONNECT /ws/?token={REDACTED}&x=1"


def test_a_token_inside_an_exception_is_redacted(json_lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_lines
    try:
        raise ValueError("GET /api?token=SECRET-2 failed")
    except ValueError:
        logger.exception("request failed")
    (line,) = lines(stream)
    assert "SECRET-2" not in json.dumps(line) and REDACTED in str(line["exc_info"])


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer SECRET-3",
        "redis://user:SECRET-3@redis:6379/0",
        "password=SECRET-3",
        "POST /api/rooms/r/messages key=SECRET-3",
    ],
)
def test_keys_passwords_and_bearer_tokens_are_redacted(text: str) -> None:
    assert "SECRET-3" not in redact(text)


# Credentials with every character a token, an API key or an encoding of either may hold.
# Each piece between two separators is a word of its own, so any part left visible shows.
PIECES = ["Pa", "Pb", "Pc", "Pd", "Pe", "Pf", "Pg", "Ph", "Pi"]
CREDENTIALS = [
    # a connection token: payload:timestamp:signature, URL-safe base64
    "eyPa:1Pb:Pc-Pd_Pe",
    # an API key
    "ck_Pa-Pb_Pc",
    # every separator the brief lists, and standard base64
    "Pa:Pb.Pc-Pd~Pe+Pf/Pg=Ph_Pi",
    # %-encoded, as a URL inside a URL or a header quoted by a proxy
    "Pa%3APb%2EPc%2BPd%2FPe%3DPf",
    "Pa%253APb",
]
POSITIONS = [
    "Authorization: Bearer {credential}",
    "authorization: bearer {credential} (from 10.0.0.7)",
    '{{"headers": {{"Authorization": "Bearer {credential}"}}}}',
    "WSCONNECT /ws/?token={credential} 127.0.0.1:5000",
    "GET /ws/?v=2&token={credential}&x=1 HTTP/1.1",
    "GET /accounts/login/?next=/ws/%3Ftoken%3D{credential} HTTP/1.1",
    '{{"token": "{credential}", "expires_in": 3600}}',
]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("position", POSITIONS)
def test_the_whole_credential_is_redacted_whatever_characters_it_holds(position: str, credential: str) -> None:
    clean = redact(position.format(credential=credential))
    assert REDACTED in clean
    visible = [piece for piece in PIECES if piece in clean]
    assert not visible, (clean, visible)


def test_redaction_keeps_what_follows_the_credential() -> None:
    assert redact("GET /ws/?token=a:b.c&room=x HTTP/1.1") == f"GET /ws/?token={REDACTED}&room=x HTTP/1.1"
    assert redact("Authorization: Bearer a:b.c, from x") == f"Authorization: Bearer {REDACTED}, from x"


@pytest.mark.cluster
async def test_a_nodes_log_never_holds_a_token_or_a_message_body(cluster: RunningCluster) -> None:
    (token,) = cluster.tokens("log-user")
    body = "body-" + uuid.uuid4().hex
    client = await Client.open(cluster.node_port(0), token)
    await client.subscribe("logs")
    await client.send(type="publish", room="logs", body=body, ref="p")
    assert (await client.until(lambda f: f.get("ref") == "p"))["type"] == "ack"
    await client.send(type="publish", room="logs", body=body, ref="bad", extra={"x": 1})
    await client.until(lambda f: f.get("ref") == "bad")
    await client.close()
    logs = sorted(cluster.cluster.run_dir.glob("node*.log"))
    assert logs
    for path in logs:
        text = path.read_text()
        assert token not in text and body not in text, path
        for line in text.splitlines():
            assert json.loads(line)["node_id"].startswith("node"), line
