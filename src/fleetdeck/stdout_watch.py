"""Noticing that the reader of stdout went away (`fleetdeck exec … | head -1`), also while nothing
is being written, so the command ends at once instead of when the next line would fail."""

from __future__ import annotations

import asyncio
import os
import select
import stat
import sys
from typing import TextIO

_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


class StdoutClosed(Exception):
    """The reader of stdout is gone: end quietly."""


def _fd(out: TextIO) -> int | None:
    try:
        return out.fileno()
    except (OSError, ValueError, AttributeError):
        return None  # not a file (a StringIO in tests): nothing to watch


def _watchable(fd: int) -> bool:
    """A pipe or socket: something with a reader that can go away (a terminal or a file cannot)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def reader_gone(fd: int) -> bool:
    """Whether the reader of pipe or socket `fd` has closed it. Linux reports POLLERR on a pipe's
    writing end once its reading end is closed, whatever events were asked for (here: none)."""
    poller = select.poll()
    poller.register(fd, 0)
    return any(events & _GONE for _fd, events in poller.poll(0))


async def until_reader_gone(out: TextIO, interval: float = 0.1) -> None:
    """Return once the reader of `out` is gone; never, for a terminal, a file or no file at all."""
    fd = _fd(out)
    if fd is None or not _watchable(fd):
        await asyncio.Event().wait()
        return
    while True:
        if reader_gone(fd):
            return
        await asyncio.sleep(interval)


def silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's last flush on the way out cannot fail loudly."""
    fd = _fd(sys.stdout)
    if fd is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
