"""Reading compact fleet frames back into the JSON `fleet` frames they stand for."""

from __future__ import annotations

from typing import Any

from .layout import ALL_FIELDS, FIELD_BITS, FULL, HEADER, NOTHING, ONLINE, VERSION, CompactFrameError, value


class _Reader:
    """A frame read front to back; running off its end is a CompactFrameError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = HEADER.size

    def _ended(self) -> CompactFrameError:
        return CompactFrameError(f"the compact fleet frame ends early (truncated) at byte {self.at}")

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise self._ended()
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        n = shift = 0
        while True:
            byte = self.byte()
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                return n
            shift += 7
            if shift > 56:
                raise CompactFrameError(f"the compact fleet frame has a number too long at byte {self.at}")

    def string(self) -> str:
        size = self.varint()
        if self.at + size > len(self.data):
            raise self._ended()
        raw = self.data[self.at : self.at + size]
        self.at += size
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise CompactFrameError(
                f"the compact fleet frame has a string not in UTF-8 before byte {self.at}"
            ) from None


class _Host:
    """One host as the decoder holds it (replaced, never changed, so a bad frame changes nothing)."""

    __slots__ = ("codes", "labels", "name", "online")

    def __init__(
        self, name: str, labels: dict[str, str], online: bool = False, codes: tuple[int, ...] = NOTHING
    ):
        self.name, self.labels, self.online, self.codes = name, labels, online, codes

    def entry(self) -> dict[str, Any]:
        total, mem, load1, disk = (value(c) for c in self.codes)
        labels = dict(self.labels)
        return {"host": self.name, "online": self.online, "total": total, "mem": mem, "load1": load1,
                "labels": labels, "disk": disk}  # fmt: skip


class Decoder:
    """One connection's compact frames turned back into the JSON `fleet` frames they stand for."""

    def __init__(self) -> None:
        self._hosts: dict[int, _Host] = {}
        self._ids: dict[str, int] = {}

    def feed(self, data: bytes) -> dict[str, Any]:
        """The JSON `fleet` frame this binary frame stands for. A corrupt, truncated or unknown
        frame raises CompactFrameError (a ValueError) and changes nothing the decoder holds."""
        if len(data) < HEADER.size:
            raise CompactFrameError(
                f"a compact fleet frame has at least {HEADER.size} bytes, this one {len(data)} (truncated)"
            )
        version, flags, ts = HEADER.unpack_from(data)
        if version != VERSION:
            raise CompactFrameError(
                f"compact fleet frame version {version} is not known here (only {VERSION})"
            )
        if flags & ~FULL:
            raise CompactFrameError(f"the compact fleet frame has unknown flags {flags:#04x}")
        full = bool(flags & FULL)
        reader = _Reader(data)
        hosts = {} if full else dict(self._hosts)
        ids = {} if full else dict(self._ids)
        self._definitions(reader, hosts, ids)
        listed = self._entries(reader, hosts)
        gone = sorted(reader.string() for _ in range(reader.varint()))
        if reader.at != len(data):
            raise CompactFrameError(
                f"the compact fleet frame has {len(data) - reader.at} bytes after its end"
            )
        for name in gone:
            hosts.pop(ids.pop(name, -1), None)
        self._hosts, self._ids = hosts, ids
        entries = [h.entry() for h in sorted(listed, key=lambda h: h.name)]
        entries += [_Host(name, {}).entry() for name in gone]
        return {"type": "fleet", "ts": ts, "full": full, "hosts": entries}

    @staticmethod
    def _definitions(reader: _Reader, hosts: dict[int, _Host], ids: dict[str, int]) -> None:
        strings = [reader.string() for _ in range(reader.varint())]
        for _ in range(reader.varint()):
            host_id, name = reader.varint(), reader.string()
            labels = {}
            for _ in range(reader.varint()):
                key, text = reader.varint(), reader.varint()
                if key >= len(strings) or text >= len(strings):
                    raise CompactFrameError(
                        f"the compact fleet frame names a label string it lacks at byte {reader.at}"
                    )
                labels[strings[key]] = strings[text]
            old = hosts.get(host_id)
            if old is not None and old.name == name:
                hosts[host_id] = _Host(name, labels, old.online, old.codes)
            else:
                hosts.pop(ids.get(name, -1), None)  # a host that came back under a new id
                hosts[host_id] = _Host(name, labels)
            ids[name] = host_id

    @staticmethod
    def _entries(reader: _Reader, hosts: dict[int, _Host]) -> list[_Host]:
        listed = []
        host_id = -1
        for _ in range(reader.varint()):
            gap = reader.varint()
            host_id += gap
            old = hosts.get(host_id)
            if gap == 0 or old is None:
                raise CompactFrameError(
                    f"the compact fleet frame has values for host id {host_id}, never defined"
                )
            mask = reader.byte()
            if mask & ~(ALL_FIELDS | ONLINE):
                raise CompactFrameError(f"the compact fleet frame has an entry with unknown bits {mask:#04x}")
            codes = tuple(
                reader.varint() if mask & bit else held
                for bit, held in zip(FIELD_BITS, old.codes, strict=True)
            )
            host = hosts[host_id] = _Host(old.name, old.labels, bool(mask & ONLINE), codes)
            listed.append(host)
        return listed
