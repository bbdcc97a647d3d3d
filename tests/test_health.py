"""The liveness file of services without an HTTP port: touched while work goes well, read by `--check`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fleetdeck_common.health import is_fresh, touch


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
