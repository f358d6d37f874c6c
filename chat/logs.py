"""Log records as JSON lines (python-json-logger) or text, with the node id and no secrets.

Every record passes `ContextFilter` on its way out: it carries `node_id`, and connection
tokens, API keys and passwords that reached a log line (a daphne access line with
`?token=`, an exception that quotes a URL) are replaced by `[redacted]`. Message bodies
are never logged in the first place: the code logs rooms, seqs and users, not text.
"""

from __future__ import annotations

import logging
import re

from chatcluster.conf import chat_settings

REDACTED = "[redacted]"
# A credential ends only where its field does (a space, a quote, `&`, `,` or `;`), not where
# some alphabet ends: connection tokens are `payload:timestamp:signature` in URL-safe base64,
# API keys are `ck_...`, and a log line may quote either %-encoded or in another spelling.
# Stopping at the first character outside a guessed alphabet (a `:`, a `%`) would print the
# rest, the signature included.
_VALUE = r"[^\s\"'&,;]+"
# `token=...` in a query string or form (also %-encoded, inside another URL), `Bearer ...`
# in a header, `password=...`, `"token": "..."` in JSON or a repr, and the password part of
# a redis:// or postgres:// URL.
_SECRETS = [
    (
        # After a word boundary, or after an encoded `?` or `&` (`%3Ftoken%3D...`).
        re.compile(r"(?i)(?:\b|(?<=%3F)|(?<=%26))((?:token|key|api_key|password|secret)(?:=|%3D))[^&\s\"']+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(rf"(?i)\b(bearer(?:\s|%20|\+)+[\"']?){_VALUE}"), rf"\1{REDACTED}"),
    (re.compile(r"""(?i)(["'](?:token|api_key|password|secret)["']\s*:\s*["'])[^"']*"""), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\1{REDACTED}@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Adds `node_id` and redacts secrets from the message and the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.node_id = chat_settings.NODE_ID
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # Both formatters print exc_text when exc_info is gone: only the redacted copy stays.
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
