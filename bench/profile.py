"""Optional: sample a server with py-spy during a benchmark's window and list where its time goes.

py-spy is not a dependency of the project; install it into .venv to use `--profile`
(`.venv/bin/pip install py-spy`). The raw stacks are kept next to the results for a flame graph
(`py-spy` writes them in the collapsed format flamegraph.pl and speedscope read).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .harness import table


@contextlib.contextmanager
def sampling(pid: int, seconds: float, stem: Path | None) -> Iterator[None]:
    """py-spy records `pid` for `seconds` into STEM.raw (collapsed stacks) and, once the block is
    done, its top functions into STEM.top.md; nothing without a stem or without py-spy."""
    binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if stem is not None and binary is None:
        print("note: py-spy not found; no profile (install it into .venv to profile)")
    if stem is None or binary is None:
        yield
        return
    raw = Path(f"{stem}.raw")
    argv = [binary, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "raw"]
    argv += ["-o", str(raw), "--nonblocking"]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield
    spy.wait(60)
    Path(f"{stem}.top.md").write_text(top(raw))


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def top(raw: Path, count: int = 15) -> str:
    """The functions with the most samples on top of the stack (self) and anywhere in it (total)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    if not samples:
        return "(no samples)"
    tables = [
        table(
            (column, "function"),
            [(f"{n / samples:.1%}", f"`{name}`") for name, n in counts.most_common(count)],
        )
        for column, counts in (("self", own), ("total", total))
    ]
    return f"{samples} samples\n\n" + "\n\n".join(tables)
