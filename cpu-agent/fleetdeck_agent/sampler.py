"""psutil to a `cpu` frame; no broker here, so it is testable on its own."""

from __future__ import annotations

import os
import time

import psutil

from fleetdeck_common.messages import CpuSample


def prime() -> None:
    """psutil measures CPU between two calls; the first call only starts the clock."""
    psutil.cpu_percent(percpu=True)


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 1)


def take_sample(host: str, interval: float) -> CpuSample:
    """CPU use since the previous call, memory use and load average of this machine."""
    percpu = [_clamp(p) for p in psutil.cpu_percent(percpu=True)]
    total = _clamp(sum(percpu) / len(percpu)) if percpu else 0.0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not every platform has a load average
        load = [0.0, 0.0, 0.0]
    return CpuSample(
        host=host,
        ts=round(time.time(), 3),
        total=total,
        percpu=percpu,
        mem=_clamp(psutil.virtual_memory().percent),
        load=load,
        interval=interval,
    )
