"""Optional: sample a server with py-spy during a benchmark's window, as a flame graph.

py-spy is not a dependency of the project; install it into .venv to use `--profile`
(`.venv/bin/pip install py-spy`).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sampling(pid: int, seconds: float, stem: Path | None) -> Iterator[None]:
    """py-spy records `pid` for `seconds` into STEM.svg, a flame graph (an interactive one in a
    browser); nothing without a stem or without py-spy."""
    binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if stem is not None and binary is None:
        print("note: py-spy not found; no profile (install it into .venv to profile)")
    if stem is None or binary is None:
        yield
        return
    argv = [binary, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "flamegraph"]
    spy = subprocess.Popen(
        [*argv, "-o", f"{stem}.svg", "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    yield
    spy.wait(60)
