"""Service logging: plain or JSON lines on stderr, tokens and session ids taken out of every line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from fleetdeck_common.logs import SHOWS_SECRET, redact, setup_logging

TOKEN = "fdk_" + "A1b2C3d4" * 4


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redact_takes_out_tokens_bearer_headers_and_session_cookies() -> None:
    assert redact(f"login with {TOKEN} now") == "login with fdk_[redacted] now"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    assert (
        redact("cookie: fleetdeck_session=s3cr3t; theme=dark")
        == "cookie: fleetdeck_session=[redacted]; theme=dark"
    )
    assert redact("fdk_short stays") == "fdk_short stays"  # too short to be a token


def test_every_line_is_redacted_whoever_logs_it(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO")
    logging.getLogger("someone.else").info("token %s used", TOKEN)
    try:
        raise ValueError(f"bad {TOKEN}")
    except ValueError:
        logging.getLogger("x").exception("failed")
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert "token fdk_[redacted] used" in err and "ValueError: bad fdk_[redacted]" in err


def test_the_line_marked_as_showing_a_secret_keeps_it(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO")
    logging.getLogger("gateway").info("open %s", TOKEN, extra={SHOWS_SECRET: True})
    assert TOKEN in capsys.readouterr().err


def test_json_lines_carry_level_logger_and_message(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("WARNING", as_json=True)
    logging.getLogger("worker").info("not shown")
    logging.getLogger("worker").warning("host %s down", "127.0.0.9")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (
        entry["level"] == "WARNING"
        and entry["logger"] == "worker"
        and entry["message"] == "host 127.0.0.9 down"
    )


def test_noisy_libraries_log_warnings_only(restored_logging: None) -> None:
    setup_logging("DEBUG")
    assert logging.getLogger("asyncssh").level == logging.WARNING
