"""Byte strings of the memory broker: written in place and read by range, as Redis SETRANGE and
GETRANGE do (a write past the end fills the gap with zeros)."""

from __future__ import annotations

from collections.abc import Callable

from .base import ByteRange, SetRange

Expire = Callable[[str], None]  # drops the key (if its time is up)


def set_range(strings: dict[str, bytearray], write: SetRange, expire: Expire) -> None:
    expire(write.key)
    data = strings.setdefault(write.key, bytearray())
    end = write.offset + len(write.data)
    data.extend(bytes(max(0, end - len(data))))
    data[write.offset : end] = write.data


def get_range(strings: dict[str, bytearray], item: ByteRange, expire: Expire) -> bytes:
    expire(item.key)
    return bytes(strings.get(item.key, b"")[item.start : max(item.start, item.end)])


def drop_expired(deadlines: dict[str, float], now: float, remove: Expire) -> None:
    """Remove every key whose time is up."""
    for key in [key for key, deadline in deadlines.items() if deadline <= now]:
        remove(key)
