"""Writing compact fleet frames: one gateway's encoder, shared by all its compact followers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .layout import ALL_FIELDS, FIELD_BITS, FULL, HEADER, NOTHING, ONLINE, VERSION, Codes, code


class Entry(Protocol):
    """A host as a frame lists it: a `FleetHost`, or anything cheaper with the same fields."""

    @property
    def host(self) -> str: ...
    @property
    def online(self) -> bool: ...
    @property
    def total(self) -> float | None: ...
    @property
    def mem(self) -> float | None: ...
    @property
    def load1(self) -> float | None: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def disk(self) -> float | None: ...


# What every follower holds of a host: its id, labels, presence and values (a plain tuple: a tick
# at 10,000 hosts makes one per host).
_Held = tuple[int, dict[str, str], bool, Codes]


def _codes(host: Entry) -> Codes:
    """`code` of each value, written out for the usual value: a tick at 10,000 hosts runs this
    10,000 times, and a call per value would double its cost."""
    t, m, l1, d = host.total, host.mem, host.load1, host.disk
    return (
        0 if t is None else int(t * 10.0 + 0.5) + 1 if 0.0 <= t < 1e13 else code(t),
        0 if m is None else int(m * 10.0 + 0.5) + 1 if 0.0 <= m < 1e13 else code(m),
        0 if l1 is None else int(l1 * 10.0 + 0.5) + 1 if 0.0 <= l1 < 1e13 else code(l1),
        0 if d is None else int(d * 10.0 + 0.5) + 1 if 0.0 <= d < 1e13 else code(d),
    )


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)


def _string(out: bytearray, text: str) -> None:
    data = text.encode()
    _varint(out, len(data))
    out += data


class _Frame:
    """One frame being written: definitions (with their strings), entries, forgotten hosts."""

    def __init__(self) -> None:
        self.strings: dict[str, int] = {}
        self.defs = bytearray()
        self.ndefs = 0
        self.entries: list[tuple[int, int, Codes]] = []

    def define(self, host_id: int, name: str, labels: dict[str, str]) -> None:
        self.ndefs += 1
        _varint(self.defs, host_id)
        _string(self.defs, name)
        _varint(self.defs, len(labels))
        for key, text in labels.items():
            _varint(self.defs, self.strings.setdefault(key, len(self.strings)))
            _varint(self.defs, self.strings.setdefault(text, len(self.strings)))

    def bytes(self, ts: float, full: bool, gone: Sequence[str]) -> bytes:
        out = bytearray(HEADER.pack(VERSION, FULL if full else 0, ts))
        _varint(out, len(self.strings))
        for text in self.strings:
            _string(out, text)
        _varint(out, self.ndefs)
        out += self.defs
        _varint(out, len(self.entries))
        previous = -1
        self.entries.sort()
        for host_id, mask, codes in self.entries:
            _varint(out, host_id - previous)
            previous = host_id
            out.append(mask)
            for bit, sent in zip(FIELD_BITS, codes, strict=True):
                if mask & bit:
                    if sent < 0x80:
                        out.append(sent)
                    elif sent < 0x4000:
                        out += bytes((sent & 0x7F | 0x80, sent >> 7))
                    else:
                        _varint(out, sent)
        _varint(out, len(gone))
        for name in gone:
            _string(out, name)
        return bytes(out)


class Encoder:
    """Compact frames of one gateway's fleet view, each built once for all compact followers.

    `changes` frames are relative to what followers hold, so every follower must get every one; a
    client that may have missed one (it joined, or fell behind) gets `full` or `catch_up` instead,
    and `resync` says when the followers' state was set that way rather than by `changes`."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}  # never reused: a forgotten host that comes back gets a new one
        self._next_id = 0
        self._held: dict[str, _Held] = {}

    def _id(self, name: str) -> int:
        host_id = self._ids.get(name)
        if host_id is None:
            host_id = self._ids[name] = self._next_id
            self._next_id += 1
        return host_id

    def full(self, ts: float, hosts: Sequence[Entry]) -> bytes:
        """Every host, defined and with every value: the decoder starts again from this."""
        self._ids = {h.host: self._id(h.host) for h in hosts}  # forgotten hosts' ids go
        return self._absolute(hosts).bytes(ts, True, ())

    def catch_up(self, ts: float, hosts: Sequence[Entry], gone: Sequence[str]) -> bytes:
        """These hosts defined again and with every value, for clients that lack no other change
        but may hold older values of these (they joined since the previous tick)."""
        return self._absolute(hosts).bytes(ts, False, gone)

    def _absolute(self, hosts: Sequence[Entry]) -> _Frame:
        frame = _Frame()
        for host in hosts:
            host_id = self._id(host.host)
            frame.define(host_id, host.host, host.labels)
            frame.entries.append((host_id, ALL_FIELDS | (ONLINE if host.online else 0), _codes(host)))
        return frame

    def changes(self, ts: float, hosts: Sequence[Entry], gone: Sequence[str]) -> bytes | None:
        """What followers lack of these hosts, their values compared rounded; None if nothing."""
        frame = _Frame()
        held_of, ids = self._held.get, self._ids
        for host in hosts:
            name, online = host.host, host.online
            host_id = ids.get(name)
            if host_id is None:
                host_id = self._id(name)
            held = held_of(name)
            codes = _codes(host)
            # Labels held are a copy made when sent, so a caller's dict changed in place still shows.
            if held is None or held[0] != host_id:
                frame.define(host_id, name, host.labels)
                labels, before = dict(host.labels), NOTHING  # a host defined anew: every value null
            elif held[1] != host.labels:
                frame.define(host_id, name, host.labels)
                labels, before = dict(host.labels), held[3]
            elif held[2] == online and held[3] == codes:
                continue
            else:
                labels, before = held[1], held[3]
            mask = ONLINE if online else 0
            if codes[0] != before[0]:
                mask |= 0x02
            if codes[1] != before[1]:
                mask |= 0x04
            if codes[2] != before[2]:
                mask |= 0x08
            if codes[3] != before[3]:
                mask |= 0x10
            frame.entries.append((host_id, mask, codes))
            self._held[name] = (host_id, labels, online, codes)
        dropped = [name for name in gone if self._held.pop(name, None) is not None]
        for name in gone:
            self._ids.pop(name, None)
        if not frame.entries and not dropped:
            return None
        return frame.bytes(ts, False, dropped)

    def resync(self, hosts: Sequence[Entry]) -> None:
        """Followers now hold exactly these hosts (each was sent a full or catch-up frame)."""
        self._held = {h.host: (self._id(h.host), dict(h.labels), h.online, _codes(h)) for h in hosts}
