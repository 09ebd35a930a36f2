"""Logging setup: text or JSON lines, and no secret ever reaches a log line.

HTTP libraries log request URLs, and Telegram's URLs contain the bot token, so a filter on every
handler replaces each configured secret (and anything shaped like a bot token) before formatting.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

_TOKEN_SHAPES = (
    re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}"),  # Telegram bot tokens
    re.compile(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{20,}"),  # Discord bot tokens
)
REDACTED = "[REDACTED]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for shape in _TOKEN_SHAPES:
        text = shape.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info), self.secrets)
            record.exc_info = None
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("update", "chat", "user", "duration_ms", "command", "platform"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


def setup_logging(
    level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger once for the process; returns the installed handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Request lines of the HTTP clients are noise at INFO (and carry the token in the URL).
    for noisy in ("httpx", "httpcore", "discord.http", "discord.gateway", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return handler
