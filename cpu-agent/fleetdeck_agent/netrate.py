"""Network throughput in bytes/s over every interface but loopback, from /proc/net/dev counters.

The rate is the counters' difference between two readings, so the first reading has none; the
agent takes that one when it starts (`sampler.prime`), so each of its samples carries rates, the
first covering the time since start. `net_rx`/`net_tx` are left out only when the counters cannot
be read. An interface whose counter went down (it was re-created,
or the counter wrapped) adds nothing to that one rate rather than a huge negative or positive one.

In a container, `<proc>/1/net/dev` is read: the network of the machine's first process, which is
the machine's own, whereas `<proc>/net/dev` would show the reader's (the container's) network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "lo"  # Linux names its loopback interface `lo`


@dataclass(frozen=True)
class Counters:
    """Bytes received and sent so far, per interface."""

    rx: dict[str, int]
    tx: dict[str, int]


def parse_net_dev(text: str) -> Counters:
    """The byte counters of a /proc/net/dev file, loopback left out."""
    rx: dict[str, int] = {}
    tx: dict[str, int] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        name = name.strip()
        if not sep or len(fields) < 9 or name == LOOPBACK:
            continue
        rx[name], tx[name] = int(fields[0]), int(fields[8])
    return Counters(rx, tx)


def _delta(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(max(value - before[name], 0) for name, value in after.items() if name in before)


def rates(before: Counters, after: Counters, seconds: float) -> tuple[float, float]:
    """Bytes/s received and sent between two readings `seconds` apart."""
    if seconds <= 0:
        return 0.0, 0.0
    return round(_delta(before.rx, after.rx) / seconds, 1), round(_delta(before.tx, after.tx) / seconds, 1)


class NetRate:
    """Turns successive readings of the machine's counters into rates."""

    def __init__(self, proc_path: Path | None) -> None:
        self._path = proc_path / "1" / "net" / "dev" if proc_path is not None else Path("/proc/net/dev")
        self._last: tuple[float, Counters] | None = None

    def read(self, now: float) -> tuple[float, float] | None:
        """(rx, tx) bytes/s since the previous call; None on the first call or if unreadable."""
        try:
            counters = parse_net_dev(self._path.read_text())
        except (OSError, ValueError):
            self._last = None
            return None
        last, self._last = self._last, (now, counters)
        return rates(last[1], counters, now - last[0]) if last is not None else None
