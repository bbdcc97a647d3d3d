"""A load run of docs/reliability.md described as data: its options, how its figures sum up, and its
summary as a `harness.Report` (sentence, targets, what else was measured, as format strings over the
figures). Also the counts over the client processes' answers that the summaries are made of."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..harness import Report
from ..measure import Context, total


@dataclass(frozen=True, kw_only=True)
class LoadRun(Report):
    """One load run: a `Report` whose `options` are its command line too (a bool is a bare flag, a
    tuple the choices, default first), with their `helps`, its `summarize`, the `sections` it shows
    after its targets, and a `plot` (an SVG; `plot_alt` says what it shows)."""

    helps: Mapping[str, str]
    summarize: Callable[[dict[str, Any], argparse.Namespace], dict[str, Any]]
    sections: Callable[[dict[str, Any], argparse.Namespace], list[str]] = lambda s, args: []
    plot: Callable[[dict[str, Any], dict[str, Any], argparse.Namespace, Context], str] | None = None
    plot_alt: str = ""

    def render(
        self, s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context, *more: str
    ) -> str:
        """The summary, with `more` (the plot) and the run's own sections after its targets."""
        return self.summary(s, raw, args, ctx, *more, *self.sections(s, args))[0]


def counted(results: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Counts by kind under `key`, added up over the client processes' answers."""
    return dict(sum((Counter(r.get(key) or {}) for r in results), Counter[str]()))


def ready_counts(raw: Mapping[str, Any]) -> tuple[int, int]:
    """Clients connected and failed, summed over the processes' `ready`."""
    return total(raw["ready"], "ready"), total(raw["ready"], "failed")
