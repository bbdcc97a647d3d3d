"""The liveness file of services without an HTTP port: touched while work goes well, read by `--check`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fleetdeck_common.health import forget_refusal, is_fresh, note_refusal, problem, touch


def test_a_touched_file_is_fresh_until_it_ages(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert not is_fresh(path, 30)  # never touched
    touch(path)
    assert is_fresh(path, 30)
    old = time.time() - 60
    os.utime(path, (old, old))
    assert not is_fresh(path, 30)
    touch(path)  # touching again renews it
    assert is_fresh(path, 30)


def test_touch_never_fails_the_service(tmp_path: Path) -> None:
    touch(None)
    touch(tmp_path / "missing" / "alive")  # no such directory: ignored
    assert not (tmp_path / "missing").exists()


def test_the_check_says_why_it_fails_and_a_noted_refusal_outlasts_touches(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert problem(None, 30) == "no health file is set (FLEETDECK_HEALTH_FILE)"
    assert problem(path, 30) == f"{path} is missing: the service has not worked since it started"
    touch(path)
    assert problem(path, 30) is None
    old = time.time() - 60
    os.utime(path, (old, old))
    assert problem(path, 30) == f"{path} was not touched within 30s: the service is not working"
    refused = "Redis refused HSET fleetdeck:hosts to this service's user (NOPERM ...)"
    note_refusal(path, refused)
    touch(path)  # other work still going well does not hide it
    assert problem(path, 30) == refused


def test_a_restart_forgets_the_refusal_without_making_the_file_fresh(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    note_refusal(path, "Redis refused GET x to this service's user")
    old = time.time() - 60
    os.utime(path, (old, old))
    forget_refusal(path)
    assert path.read_text() == "" and not is_fresh(path, 30)  # stale until the service works again
    touch(path)
    assert problem(path, 30) is None
    forget_refusal(tmp_path / "missing" / "alive")  # nothing there: nothing to do
    note_refusal(tmp_path / "missing" / "alive", "x")  # an unwritable place never stops the service
