"""What the compact fleet frame's encoder and decoder share: the header, bits and value codes."""

from __future__ import annotations

import math
import struct

VERSION = 1
FULL = 0x01  # flags: the frame replaces everything the decoder held
ONLINE = 0x01  # entry mask: the host is online
FIELD_BITS = (0x02, 0x04, 0x08, 0x10)  # entry mask: total, mem, load1, disk follow
ALL_FIELDS = 0x1E
HEADER = struct.Struct("<BBd")  # version, flags, ts
MAX_CODE = 1 << 48  # well inside what a JavaScript number holds exactly
NOTHING = (0, 0, 0, 0)  # a newly defined host's values: every one null

Codes = tuple[int, int, int, int]  # total, mem, load1, disk as sent


class CompactFrameError(ValueError):
    """A compact fleet frame that is corrupt, truncated or of another version."""


def code(value: float | None) -> int:
    """A value as sent: 0 for null, else 1 + its tenths, rounded half up (below 0: as 0)."""
    if value is None or not math.isfinite(value):
        return 0
    return 1 + min(math.floor(max(value, 0.0) * 10 + 0.5), MAX_CODE)


def value(sent: int) -> float | None:
    """A sent code back as the value it stands for."""
    return None if sent == 0 else (sent - 1) / 10
