"""The protocol's values as one JSON object, served by GET /api/protocol. Pure."""

from __future__ import annotations

from typing import Any

from .tones import STATUS_TONES
from .values import (
    DEFAULT_TIMEOUT_SECONDS,
    ERROR_CODES,
    FINISHED_STATES,
    FLEET_FORMATS,
    HOST_STATUSES,
    HOSTS_FORMATS,
    JOB_STATES,
    MAX_CHAT_CHARS,
    MAX_COMMAND_CHARS,
    MAX_REF_CHARS,
    MAX_TARGETS_CHARS,
    MAX_TERM_COLS,
    MAX_TERM_INPUT_CHARS,
    MAX_TERM_ROWS,
    MAX_TIMEOUT_SECONDS,
    PROTOCOL_VERSION,
    TOPICS,
)


def protocol_description() -> dict[str, Any]:
    """The protocol's values for clients, so the dashboard copies none of them."""
    return {
        "version": PROTOCOL_VERSION,
        "topics": list(TOPICS),
        "job_states": list(JOB_STATES),
        "finished_states": sorted(FINISHED_STATES),
        "host_statuses": list(HOST_STATUSES),
        "status_tones": dict(STATUS_TONES),
        "error_codes": list(ERROR_CODES),
        "fleet_formats": list(FLEET_FORMATS),
        "hosts_formats": list(HOSTS_FORMATS),
        "limits": {
            "command_chars": MAX_COMMAND_CHARS,
            "targets_chars": MAX_TARGETS_CHARS,
            "timeout_seconds": MAX_TIMEOUT_SECONDS,
            "default_timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
            "chat_chars": MAX_CHAT_CHARS,
            "ref_chars": MAX_REF_CHARS,
            "term_cols": MAX_TERM_COLS,
            "term_rows": MAX_TERM_ROWS,
            "term_input_chars": MAX_TERM_INPUT_CHARS,
        },
    }
