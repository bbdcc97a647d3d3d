"""Editing a small file so that a reader never sees half an edit, and two editors never lose one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def edit_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`'s folder while editing it, so two processes editing at
    once take turns (a lock on the file itself would not survive the file being replaced)."""
    folder = os.open(path.resolve().parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without flock: edit unlocked
            fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # releases the lock


def replace_atomically(path: Path, text: str) -> None:
    """Write `text` to a new file in the same folder, flush it to disk and rename it over `path`:
    readers see the old content or the new, never a mix. The mode (and, where this process may,
    the owner) of the old file is kept. A symlink is followed, and its target replaced."""
    real = path.resolve()
    old = real.stat()
    fd, temporary = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), old.st_uid, old.st_gid)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(real.parent)


def append_durably(path: Path, text: str, mode: int = 0o600) -> None:
    """Append `text` in place (the file keeps its inode), creating the file with `mode` if
    missing; starts a new line first if the file does not end with one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, mode)
    with os.fdopen(fd, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                text = "\n" + text
        handle.write(text.encode())
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
