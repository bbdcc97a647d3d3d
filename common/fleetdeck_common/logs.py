"""Logging setup shared by every service: stdlib logging, plain or JSON lines on stderr, with
tokens and session ids taken out of every line whoever logs them."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# extra={SHOWS_SECRET: True} marks the one line meant to carry a token: the login URL of a
# gateway that made its own one-off token (no token file).
SHOWS_SECRET = "fleetdeck_shows_secret"  # noqa: S105 (an attribute name, not a secret)
# Tokens (fdk_...), and bearer tokens and session cookies in request headers, which uvicorn logs
# at DEBUG.
_SECRET = re.compile(
    r"(?i)(authorization:\s*bearer\s+|fleetdeck_session=)[^\s;,'\"]+|\bfdk_[A-Za-z0-9_-]{8,}"
)


def redact(text: str) -> str:
    """`text` with every token and session id replaced by `[redacted]`."""
    return _SECRET.sub(lambda m: f"{m.group(1) or 'fdk_'}[redacted]", text)


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, SHOWS_SECRET, False):
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactSecrets())
    if as_json:
        handler.setFormatter(_JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("asyncssh", "websockets", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
