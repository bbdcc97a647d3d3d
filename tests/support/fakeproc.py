"""A stand-in for a machine's /proc (what an agent in a container sees at FLEETDECK_PROC_PATH), with
figures no real machine here has, so a sample shows which /proc it was read from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FakeProc:
    path: Path
    cpus: int
    load: list[float]
    mem_percent: float


def make_fake_proc(
    path: Path, cpus: int = 3, load: tuple[float, float, float] = (7.25, 6.5, 5.75)
) -> FakeProc:
    """Write stat, meminfo and loadavg of a `cpus`-core machine with 75% of its memory in use."""
    path.mkdir(parents=True, exist_ok=True)
    lines = ["cpu  " + " ".join(str(100 * cpus) for _ in range(10))]
    lines += [f"cpu{n} " + " ".join("100" for _ in range(10)) for n in range(cpus)]
    lines += ["intr 1 0", "ctxt 1", "btime 1700000000", "processes 1", "procs_running 1", "procs_blocked 0"]
    (path / "stat").write_text("\n".join(lines) + "\n")
    total, available = 8_000_000, 2_000_000  # kB: 75% in use
    meminfo = {
        "MemTotal": total,
        "MemFree": 1_000_000,
        "MemAvailable": available,
        "Buffers": 100_000,
        "Cached": 900_000,
        "SwapCached": 0,
        "Active": 3_000_000,
        "Inactive": 2_000_000,
        "SwapTotal": 0,
        "SwapFree": 0,
        "Shmem": 10_000,
        "Slab": 200_000,
        "SReclaimable": 100_000,
    }
    (path / "meminfo").write_text("".join(f"{key}:{value:>16} kB\n" for key, value in meminfo.items()))
    (path / "loadavg").write_text(" ".join(f"{x:.2f}" for x in load) + " 2/345 6789\n")
    return FakeProc(path, cpus, list(load), 75.0)
