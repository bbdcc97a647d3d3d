"""Results files and the places that quote them.

Each benchmark writes `bench/NAME.md` (a table, the context, the command) and `bench/NAME.json`
(every figure), then replaces the block between `<!-- bench:NAME -->` and `<!-- /bench -->` in
docs/benchmarks.md (the full table) and in the README (its short form), like bench/exec_fanout.py
does for its own block.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def histogram(parts: Iterable[Mapping[str, int]]) -> Counter[int]:
    """Latency histograms from several client processes, added up (keys are bins)."""
    total: Counter[int] = Counter()
    for part in parts:
        for key, count in part.items():
            total[int(key)] += count
    return total


def quantile_ms(hist: Counter[int], share: float, bin_ms: float) -> float:
    """The `share` quantile of a histogram, in milliseconds; NaN when it is empty."""
    count = sum(hist.values())
    if count == 0:
        return math.nan
    rank = max(1, math.ceil(share * count))
    seen = 0
    for key in sorted(hist):
        seen += hist[key]
        if seen >= rank:
            return key * bin_ms
    return max(hist) * bin_ms


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def write_results(name: str, title: str, body: str, data: Mapping[str, Any]) -> None:
    (ROOT / "bench" / f"{name}.md").write_text(
        f"# {title}\n\nWritten by `bench/{name}.py`; do not edit by hand. "
        f"See docs/benchmarks.md for what is measured and how.\n\n{body}\n"
    )
    (ROOT / "bench" / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def quote(path: Path, name: str, text: str) -> bool:
    """Replace the `name` block in `path`; False when the file has no such block."""
    if not path.exists():
        return False
    original = path.read_text()
    updated = re.sub(
        rf"(<!-- bench:{re.escape(name)} -->\n).*?(\n<!-- /bench -->)",
        lambda m: m.group(1) + text.strip("\n") + m.group(2),
        original,
        flags=re.DOTALL,
    )
    if updated == original and f"<!-- bench:{name} -->" not in original:
        return False
    path.write_text(updated)
    return True


def publish(name: str, full: str, short: str) -> None:
    """Quote the figures in docs/benchmarks.md (full) and the README (short)."""
    for path, text in ((ROOT / "docs" / "benchmarks.md", full), (ROOT / "README.md", short)):
        if not quote(path, name, text):
            print(f"note: {path.relative_to(ROOT)} has no <!-- bench:{name} --> block; not quoted there")


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
