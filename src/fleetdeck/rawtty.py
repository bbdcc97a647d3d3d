"""The local terminal for `fleetdeck shell`: raw mode that is always restored, and its size."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
import tty
from collections.abc import Iterator

DEFAULT_SIZE = (80, 24)


def window_size(fd: int) -> tuple[int, int]:
    """(cols, rows) of the terminal on `fd`, or 80x24 when it is not a terminal or says 0."""
    try:
        rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return DEFAULT_SIZE
    return (cols, rows) if cols and rows else DEFAULT_SIZE


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Keys go through as they are typed (Ctrl-C included) until the block ends, however it ends;
    a descriptor that is not a terminal is left alone."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
