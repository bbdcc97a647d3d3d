"""Liveness for services without an HTTP port: a file touched while work goes well, checked by `--check`."""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.touch()
        os.utime(path)
    except OSError:
        pass  # a read-only or missing directory must not stop the service


def is_fresh(path: Path, max_age: float) -> bool:
    """True if `path` was touched within `max_age` seconds."""
    try:
        return time.time() - path.stat().st_mtime <= max_age
    except OSError:
        return False
