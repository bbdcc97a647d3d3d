"""Samples to records and back: what of a `cpu` frame a tier keeps, and the frame a stored record
becomes: per-core values are not kept (`percpu` is empty), `uptime` comes from the host's boot
time. Pure."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..messages import CpuSample
from .codec import Record

# Fields of protocol v1.2 a record keeps, where this version's CpuSample has them.
_OPTIONAL = tuple(name for name in ("disk", "net_rx", "net_tx") if name in CpuSample.model_fields)


def record_of(sample: CpuSample) -> Record:
    # disk, net_rx and net_tx are optional: agents before protocol v1.2 do not send them.
    disk: float | None = getattr(sample, "disk", None)
    net_rx: float | None = getattr(sample, "net_rx", None)
    net_tx: float | None = getattr(sample, "net_tx", None)
    load1, load5, load15 = sample.load
    return Record(sample.total, sample.total, sample.mem, load1, disk, net_rx, net_tx, load5, load15)


def samples_of(
    host: str, records: Sequence[tuple[int, Record]], step: int, boot: float | None = None
) -> list[CpuSample]:
    """`cpu` frames for stored records (of the finest tier, which keeps load5 and load15), their
    interval the usual distance between them; `uptime` counted from `boot`, the host's boot time,
    for the records since then (older ones are of an earlier boot: left without)."""
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(records))
    interval = float(max(step, gaps[len(gaps) // 2] if gaps else step))
    samples = []
    for ts, record in records:
        extra: dict[str, float] = {
            name: value for name in _OPTIONAL if (value := getattr(record, name)) is not None
        }
        if boot is not None and ts >= boot:
            extra["uptime"] = float(ts - boot)
        load1 = record.load1 or 0.0
        # A record without load5/load15 is a narrow one: a finest tier never holds such records.
        load5 = load1 if record.load5 is None else record.load5
        load = [load1, load5, load5 if record.load15 is None else record.load15]
        samples.append(
            CpuSample.model_validate(
                {
                    "host": host,
                    "ts": float(ts),
                    "total": record.total,
                    "percpu": [],
                    "mem": record.mem or 0.0,
                    "load": load,
                    "interval": interval,
                    **extra,
                }
            )
        )
    return samples
