"""Liveness for services without an HTTP port: a file touched while work goes well, checked by `--check`.

A refusal that waiting will not fix (Redis's ACL denying this service a command) is written into
the file, so `--check` fails with that sentence until the service restarts with a fixed ACL.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

MAX_REASON = 4096  # bytes of a noted reason `--check` reads back


def touch(path: Path | None) -> None:
    """Mark the service healthy now (the file's time; a noted refusal in it stays)."""
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


def forget_refusal(path: Path | None) -> None:
    """At a start: drop a refusal an earlier run noted, keeping the file's time (not made fresh)."""
    if path is None:
        return
    try:
        times = path.stat()
        if times.st_size:
            path.write_bytes(b"")
            os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    except OSError:
        pass


def note_refusal(path: Path | None, why: str) -> None:
    """Keep `why` in the health file: `--check` fails with it from now on."""
    if path is None:
        return
    with contextlib.suppress(OSError):  # a read-only directory must not stop the service
        path.write_text(f"{why}\n")


def problem(path: Path | None, max_age: float) -> str | None:
    """Why `--check` fails (a noted refusal first, then a stale or missing file), or None."""
    if path is None:
        return "no health file is set (FLEETDECK_HEALTH_FILE)"
    try:
        with path.open("rb") as handle:
            noted = handle.read(MAX_REASON).decode(errors="replace").strip()
    except OSError:
        return f"{path} is missing: the service has not worked since it started"
    if noted:
        return noted
    if not is_fresh(path, max_age):
        return f"{path} was not touched within {max_age:g}s: the service is not working"
    return None
