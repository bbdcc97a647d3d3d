"""psutil to a `cpu` frame; no broker here, so it is testable on its own.

In a container the machine's /proc can be mounted elsewhere (FLEETDECK_PROC_PATH): psutil reads
`psutil.PROCFS_PATH` on every call, and the load average is read from that folder's `loadavg`,
since `os.getloadavg()` always asks the kernel about /proc of the process itself. Disks and
network are read by `disks` and `netrate` (which explain what the container case needs), uptime
from the boot time in that folder's `stat`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from fleetdeck_common.messages import CpuSample, Mount

from .disks import DiskReader, fullest
from .netrate import NetRate

_loadavg: Path | None = None  # <proc path>/loadavg when one is given, else os.getloadavg()
_disks = DiskReader(None, None)
_net = NetRate(None)
_mounts: list[Mount] = []  # measured by the latest sample


def proc_problem(path: Path) -> str | None:
    """Why `path` cannot stand in for /proc (its `stat` is unreadable), or None if it can."""
    try:
        (path / "stat").read_bytes()
    except OSError as exc:
        return (
            f"FLEETDECK_PROC_PATH: cannot read {path / 'stat'} ({exc.strerror or exc}); mount the "
            f"machine's /proc there read-only (docker: -v /proc:{path}:ro) or unset FLEETDECK_PROC_PATH"
        )
    return None


def use_proc(path: Path | None, rootfs: Path | None = None) -> None:
    """Measure the machine whose /proc is at `path` (None: this process's own /proc) and whose /
    is at `rootfs` (None: the file systems this process sees)."""
    global _loadavg, _disks, _net, _mounts  # noqa: PLW0603 - psutil's own setting is module-wide too
    psutil.PROCFS_PATH = str(path) if path is not None else "/proc"
    _loadavg = path / "loadavg" if path is not None else None
    _disks, _net, _mounts = DiskReader(path, rootfs), NetRate(path), []


def prime() -> None:
    """psutil measures CPU (and `netrate` the network) between two calls; the first only starts the clock."""
    psutil.cpu_percent(percpu=True)
    _net.read(time.monotonic())


def mounts() -> list[Mount]:
    """The local file systems measured by the latest sample, fullest first."""
    return list(_mounts)


def _uptime() -> float | None:
    try:
        return round(max(time.time() - psutil.boot_time(), 0.0), 1)
    except (OSError, RuntimeError, ValueError):
        return None


def _load_average() -> list[float]:
    if _loadavg is not None:
        return [round(float(x), 2) for x in _loadavg.read_text().split()[:3]]
    return [round(x, 2) for x in os.getloadavg()]


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 1)


def take_sample(host: str, interval: float) -> CpuSample:
    """CPU use and network rates since the previous call; memory, load, disk use and uptime now."""
    global _mounts  # noqa: PLW0603 - see use_proc
    percpu = [_clamp(p) for p in psutil.cpu_percent(percpu=True)]
    total = _clamp(sum(percpu) / len(percpu)) if percpu else 0.0
    try:
        load = _load_average()
    except (OSError, ValueError):  # not every platform has a load average
        load = [0.0, 0.0, 0.0]
    _mounts = _disks.read()
    net = _net.read(time.monotonic())
    return CpuSample(
        host=host,
        ts=round(time.time(), 3),
        total=total,
        percpu=percpu,
        mem=_clamp(psutil.virtual_memory().percent),
        load=load,
        interval=interval,
        disk=fullest(_mounts),
        net_rx=net[0] if net is not None else None,
        net_tx=net[1] if net is not None else None,
        uptime=_uptime(),
    )
