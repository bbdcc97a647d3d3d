"""Samples to records and back: what of a `cpu` frame a tier keeps, and the frame a stored record
becomes (no per-core values; `load` holds load1 three times, load5 and load15 are not kept). Pure."""

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
    return Record(sample.total, sample.total, sample.mem, sample.load[0], disk, net_rx, net_tx)


def samples_of(host: str, records: Sequence[tuple[int, Record]], step: int) -> list[CpuSample]:
    """`cpu` frames for stored records, their interval the usual distance between them."""
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(records))
    interval = float(max(step, gaps[len(gaps) // 2] if gaps else step))
    samples = []
    for ts, record in records:
        extra = {name: value for name in _OPTIONAL if (value := getattr(record, name)) is not None}
        load = record.load1 or 0.0
        samples.append(
            CpuSample.model_validate(
                {
                    "host": host,
                    "ts": float(ts),
                    "total": record.total,
                    "percpu": [],
                    "mem": record.mem or 0.0,
                    "load": [load, load, load],
                    "interval": interval,
                    **extra,
                }
            )
        )
    return samples
