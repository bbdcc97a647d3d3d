"""A load run's Markdown summary, described as data: its sentence, a table of targets and one of what
else was measured, each row written `what | measured | target | met` with format strings filled in
from the run's figures (its options, raw measurements and summary). Also the sums and counts over
the client processes' answers that the summaries are made of."""

from __future__ import annotations

import argparse
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..harness import ms, reproduce, table, verdict
from ..measure import Context

MACHINE = """
CPU of the other processes on the machine | {others_cpu_pct:.0f}%{disturbed}
kernel interrupt work (mostly loopback traffic) / CPU stolen by the hypervisor
    | {softirq_cpu_pct:.0f}% / {stolen_cpu_pct:.0f}%
"""


@dataclass(frozen=True)
class LoadRun:
    """One load run of docs/reliability.md: its options and how its summary reads. `targets` and
    `also` hold a table row a line (an indented line goes on with the one before): `what |
    measured`, and for a target `| target | KEY`, met when the summary's `met[KEY]` is true (None:
    not for this run, so neither target nor verdict shows)."""

    name: str
    title: str
    options: Mapping[str, Any]  # defaults; a bool is a bare flag, a tuple the choices (default first)
    helps: Mapping[str, str]
    head: str
    targets: str
    also: str
    summarize: Callable[[dict[str, Any], argparse.Namespace], dict[str, Any]]
    target: Mapping[str, float] = field(default_factory=dict)  # the targets' figures, as `{target[KEY]}`
    sections: Callable[[dict[str, Any], argparse.Namespace], list[str]] = lambda s, args: []  # after targets
    plot: Callable[[dict[str, Any], dict[str, Any], argparse.Namespace, Context], str] | None = None  # SVG
    plot_alt: str = ""  # what the plot shows

    def render(
        self, s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context, *more: str
    ) -> str:
        """The summary: sentence, targets, `more` and the run's own sections, what else was measured,
        the command again."""
        figures = {**vars(args), **raw, **s, "context": ctx.sentence(), "target": self.target}
        figures["disturbed"] = " (**disturbed run**)" if raw["others_cpu_pct"] > args.max_others else ""
        goals = []
        for what, measured, target, key in ([*row, "", ""][:4] for row in rows(self.targets)):
            met = s["met"][key] if key else None
            goals.append([what, measured, "" if met is None else target, "" if met is None else verdict(met)])
        parts = [
            fill(" ".join(self.head.split()), figures),
            table(("", "measured", "target", ""), filled(goals, figures)),
            *more,
            *self.sections(s, args),
            table(("also measured", "value"), filled(rows(self.also + MACHINE), figures)),
        ]
        defaults = {
            key: value[0] if isinstance(value, tuple) else value for key, value in self.options.items()
        }
        return "\n\n".join(parts) + f"\n\nReproduce: `{reproduce(self.name, args, defaults)}`"


def fill(text: str, figures: Mapping[str, Any]) -> str:
    """`text` with its `{figure:format}` fields filled in."""
    return _Figures().vformat(text, (), figures)


def rows(text: str) -> list[list[str]]:
    """Table rows written one a line, cells apart by ` | `; an indented line goes on with the one before."""
    lines = re.sub(r"\n[ \t]+", " ", text).splitlines()
    return [[cell.strip() for cell in line.split(" | ")] for line in lines if line.strip()]


def filled(cells: Iterable[Sequence[str]], figures: Mapping[str, Any]) -> list[list[str]]:
    """Every cell filled in."""
    return [[fill(cell, figures) for cell in row] for row in cells]


def listing(header: str, row: str, items: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of `items`, a row each: `header` and `row` are written as in `rows`."""
    return table(rows(header)[0], (filled(rows(row), item)[0] for item in items))


def counts(parts: Mapping[str, int], empty: str = "none") -> str:
    """Counts by kind, as `kind: n, ...`."""
    return ", ".join(f"{key}: {value:,}" for key, value in sorted(parts.items())) or empty


class _Figures(string.Formatter):
    """str.format, with `-` for NaN, a spread (measure.spread) as `median [min, max]`, and units of
    its own: `ms`, `KiB:MiB`, `B:MiB` and `B:KiB` (KiB or bytes shown in MiB or KiB), `counts` (a
    dict of counts by kind), `met` (a target's verdict)."""

    UNITS: Mapping[str, Callable[[Any], str]] = {
        "ms": ms,
        "KiB:MiB": lambda v: f"{v / 1024:,.1f} MiB",
        "B:MiB": lambda v: f"{v / 2**20:,.1f} MiB",
        "B:KiB": lambda v: f"{v / 1024:,.1f} KiB",
        "counts": counts,
        "met": verdict,
    }

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "-"
        if isinstance(value, Mapping) and value.keys() == {"min", "median", "max"}:
            low, middle, high = (self.format_field(value[k], format_spec) for k in ("min", "median", "max"))
            return f"{middle} [{low}, {high}]"
        unit = self.UNITS.get(format_spec)
        return unit(value) if unit else super().format_field(value, format_spec)


def total(results: Iterable[Mapping[str, Any]], key: str) -> Any:
    """`key` summed over the client processes' answers (0 where one has none)."""
    return sum(r.get(key, 0) for r in results)


def counted(results: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Counts by kind under `key`, added up over the client processes' answers."""
    return dict(sum((Counter(r.get(key) or {}) for r in results), Counter[str]()))


def ready_counts(raw: Mapping[str, Any]) -> tuple[int, int]:
    """Clients connected and failed, summed over the processes' `ready`."""
    return total(raw["ready"], "ready"), total(raw["ready"], "failed")
