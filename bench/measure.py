"""What the benchmarks read from /proc and the machine: CPU time, RSS, load, and the run's context.

Linux only (the benchmarks read /proc). CPU time is utime + stime of a process (all its threads),
so a server's figure does not depend on how busy the rest of the machine is; what the rest of the
machine did during a window is reported next to it (`CpuWindow`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
MEASURED = ("common", "gateway", "cpu-agent", "web")  # the folders whose code a run measures


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    """Resident set size in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


def switches(pid: int) -> tuple[int, int]:
    """Context switches of the process's threads so far: voluntary (it waited), involuntary (preempted)."""
    counts = [0, 0]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for name, _, value in (
                line.partition(":") for line in (task / "status").read_text().splitlines()
            ):
                if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    counts[name.startswith("non")] += int(value)
    return counts[0], counts[1]


def rss_median(pid: int, seconds: float) -> int:
    """The median of RSS readings taken every half second for `seconds`."""
    readings = []
    deadline = time.monotonic() + seconds
    while True:
        readings.append(rss_kib(pid))
        if time.monotonic() >= deadline:
            return int(statistics.median(readings))
        time.sleep(0.5)


def machine_cpu() -> tuple[float, float, float]:
    """CPU seconds the machine has spent so far in processes, in interrupts, and stolen from it."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system) / TICKS, (irq + softirq) / TICKS, steal / TICKS


class CpuWindow:
    """CPU over a window, in % of one core: each of `ours`, the machine's other processes, and apart
    the kernel's interrupt work (loopback traffic is mostly softirq, which no process is charged
    for) and time the hypervisor stole from this virtual machine."""

    def __init__(self, ours: Iterable[int]) -> None:
        self.start = {p: cpu_seconds(p) for p in ours}
        self.machine = machine_cpu()
        self.t0 = time.monotonic()

    def _used(self) -> dict[int, float]:
        """CPU seconds each of ours used since the start (none after it exited)."""
        used = dict.fromkeys(self.start, 0.0)
        for pid, start in self.start.items():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                used[pid] = cpu_seconds(pid) - start
        return used

    def others(self) -> float:
        """CPU seconds used since the start by processes that are not ours."""
        return max(0.0, machine_cpu()[0] - self.machine[0] - sum(self._used().values()))

    def close(self) -> tuple[dict[int, float], dict[str, float]]:
        """Each process's CPU, and the window's length and what the machine did (raw results)."""
        elapsed = time.monotonic() - self.t0
        now = machine_cpu()
        return {p: s / elapsed * 100 for p, s in self._used().items()}, {
            "window_s": elapsed,
            "others_cpu_pct": self.others() / elapsed * 100,
            "softirq_cpu_pct": (now[1] - self.machine[1]) / elapsed * 100,
            "stolen_cpu_pct": (now[2] - self.machine[2]) / elapsed * 100,
        }


def code_version() -> str:
    """The commit measured, and whether the measured folders had changes not committed yet."""
    git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", *MEASURED], capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + (" with uncommitted changes" if changed.stdout else "")


@dataclass(frozen=True)
class Context:
    """Where and when a benchmark ran, for the results files."""

    date: str
    cpus: int
    python: str
    code: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def now(cls) -> Context:
        return cls(
            date=datetime.date.today().isoformat(),
            cpus=os.cpu_count() or 1,
            python=platform.python_version(),
            code=code_version(),
            load_before=os.getloadavg(),
        )

    def finished(self) -> Context:
        return replace(self, load_after=os.getloadavg())

    def sentence(self) -> str:
        before = ", ".join(f"{v:.2f}" for v in self.load_before)
        after = ", ".join(f"{v:.2f}" for v in self.load_after)
        return (
            f"{self.date}, code {self.code}; {self.cpus} CPUs, Python {self.python}; "
            f"load average (1, 5, 15 min) {before} before, {after} after"
        )


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (0..1) of the values by nearest rank; NaN for none."""
    return quantile(Counter(values), share)


def quantile(hist: Mapping[Any, int], share: float) -> float:
    """The `share` quantile (0..1) by nearest rank of a histogram (value -> count); NaN when empty."""
    rank, seen = max(1, math.ceil(share * sum(hist.values()))), 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return float(value)
    return math.nan


def spread(values: Sequence[float]) -> dict[str, float]:
    """Min, median and max of per-round figures."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def wait_for_quiet(limit: float, timeout: float) -> float:
    """Wait (at most `timeout` s) until the 1-minute load average is under `limit`; return it."""
    deadline = time.monotonic() + timeout
    while (current := os.getloadavg()[0]) >= limit and time.monotonic() < deadline:
        time.sleep(5)
    return current


def best_of(
    args: argparse.Namespace, measure: Callable[[Path], dict[str, Any]]
) -> tuple[dict[str, Any], Context]:
    """Run `measure` (in a fresh temporary folder) up to --attempts times while other processes
    took more than --max-others % of a core in its window; keep the least disturbed run."""
    best: tuple[dict[str, Any], Context] | None = None
    for attempt in range(max(1, args.attempts)):
        wait_for_quiet(args.max_load, 300)
        ctx = Context.now()
        with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
            raw = measure(Path(tmp))
        ctx = ctx.finished()
        others = raw.get("others_cpu_pct", 0.0)  # a run that does not measure them: undisturbed
        print(f"attempt {attempt + 1}: the rest of the machine used {others:.0f}% of a core")
        if best is None or others < best[0].get("others_cpu_pct", 0.0):
            best = (raw, ctx)
        if others <= args.max_others:
            break
    assert best is not None
    return best


def quantiles(results: Sequence[Mapping[str, Any]], key: str, name: str) -> dict[str, float]:
    """`NAME_p50_ms`, `NAME_p99_ms` and `NAME_max_ms` of the processes' `key` histograms (bins of
    `bin_ms` -> count) added up, and `NAME_count`, the values they hold."""
    hist: Counter[int] = Counter()
    for result in results:
        hist.update({int(bin_): count for bin_, count in result[key].items()})
    bin_ms, shares = results[0]["bin_ms"] if results else 0.1, {"p50": 0.5, "p99": 0.99, "max": 1.0}
    figures = {f"{name}_{label}_ms": quantile(hist, share) * bin_ms for label, share in shares.items()}
    return figures | {f"{name}_count": sum(hist.values())}


def total(results: Iterable[Mapping[str, Any]], key: str) -> Any:
    """`key` summed over the client processes' answers (0 where one has none)."""
    return sum(r.get(key, 0) for r in results)


def counted(results: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Counts by kind under `key`, added up over the client processes' answers."""
    return dict(sum((Counter(r.get(key) or {}) for r in results), Counter[str]()))


def ready_counts(raw: Mapping[str, Any]) -> tuple[int, int]:
    """Clients connected and failed, summed over the processes' `ready`."""
    return total(raw["ready"], "ready"), total(raw["ready"], "failed")


def fleet_frames(results: Sequence[Mapping[str, Any]], clients: int, window_s: float) -> dict[str, float]:
    """The `fleet` frames a client received a second, their size, and the host entries in one (counted
    in the frames that were parsed, the probes': the others are `--light`)."""
    frames = total(results, "frames")
    return {
        "frames_per_client_per_s": frames / max(1, clients) / window_s,
        "frame_kib": total(results, "frame_bytes") / max(1, frames) / 1024,
        "hosts_per_frame": total(results, "entries") / max(1, frames - total(results, "light_frames")),
    }
