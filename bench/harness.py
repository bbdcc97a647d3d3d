"""What every benchmark hands in, and the one writer that files it.

A `Result` goes to three places: its raw figures to `bench/results/NAME.json` (ignored by git), its
short committed summary to `bench/NAME.md` (with `bench/NAME.svg` when it has a plot), and its
quoted text into the block between `<!-- bench:NAME -->` and `<!-- /bench -->` of the page that
explains it (docs/benchmarks.md or docs/reliability.md), and of the README when it has a short form.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .measure import Context, best_of, raise_fd_limit

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RAW = BENCH / "results"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
RELIABILITY = ROOT / "docs" / "reliability.md"
README = ROOT / "README.md"
T = TypeVar("T")


@dataclass
class Result:
    """One run's figures: `summary` is the committed Markdown, `data` the raw JSON."""

    name: str  # bench/NAME.md, bench/results/NAME.json, the <!-- bench:NAME --> blocks
    title: str
    summary: str
    data: Mapping[str, Any]
    script: str = ""  # the module that wrote it, when it is not NAME
    page: Path = BENCHMARKS  # the docs page that explains it and quotes `summary`
    quoted: str | None = None  # what the page quotes, when it differs from `summary` (links)
    short: str | None = None  # the README's short form; None: not in the README
    plot: str | None = None  # an SVG, saved as NAME.svg beside the summary
    extra: dict[str, str] = field(default_factory=dict)  # further files beside the summary


def write(result: Result, out: Path = BENCH, docs: bool = True) -> Path:
    """File the result: raw JSON, the Markdown summary (and plot), the quoted docs blocks."""
    raw = RAW if out == BENCH else out
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{result.name}.json").write_text(json.dumps(result.data, indent=2, default=str) + "\n")
    page = result.page.relative_to(ROOT)
    summary = out / f"{result.name}.md"
    summary.write_text(
        f"# {result.title}\n\nWritten by `bench/{result.script or result.name}.py`; do not edit by hand. "
        f"See {page} for what is measured and how.\n\n{result.summary.strip()}\n"
    )
    if result.plot is not None:
        (out / f"{result.name}.svg").write_text(result.plot)
    for filename, text in result.extra.items():
        (out / filename).write_text(text)
    if docs:
        quote(result.page, result.name, result.quoted or result.summary)
        if result.short is not None:
            quote(README, result.name, result.short)
    print(f"wrote {summary} and {raw / (result.name + '.json')}")
    return summary


def quote(path: Path, name: str, text: str) -> bool:
    """Replace the `name` block in `path`; False (and a note) when the file has no such block."""
    original = path.read_text() if path.exists() else ""
    if f"<!-- bench:{name} -->\n" not in original:
        print(f"note: {path.name} has no <!-- bench:{name} --> block; not quoted there")
        return False
    path.write_text(
        re.sub(
            rf"(<!-- bench:{re.escape(name)} -->\n)(?:.*?\n)??(<!-- /bench -->)",  # an empty block too
            lambda m: m.group(1) + text.strip("\n") + "\n" + m.group(2),
            original,
            count=1,
            flags=re.DOTALL,
        )
    )
    return True


def common_options(parser: argparse.ArgumentParser, attempts: int = 1, settle: float = 5) -> None:
    """The options every long benchmark takes: quiet machine, attempts, where results go."""
    parser.add_argument("--settle", type=float, default=settle, help="seconds to settle before measuring")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait (minutes at most) for a lower load")
    parser.add_argument(
        "--max-others", type=float, default=30.0, help="%% of a core others may use in a window"
    )
    parser.add_argument("--attempts", type=int, default=attempts, help="runs while others disturb the window")
    output_options(parser)


def output_options(parser: argparse.ArgumentParser) -> None:
    """Where a run's results go: --out (a scratch folder for trial runs) and --no-docs."""
    parser.add_argument("--out", type=Path, default=BENCH, help="folder for NAME.md (default bench/)")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not quote the figures in docs (trial runs)"
    )


def measured(
    args: argparse.Namespace, measure: Callable[[Path], dict[str, Any]], needed_fds: int = 0
) -> tuple[dict[str, Any], Context]:
    """Raise the open-files limit (children inherit it), then the least disturbed of the runs."""
    if (limit := raise_fd_limit()) < needed_fds:
        print(f"note: open-files limit {limit} is under the ~{needed_fds} this run needs (ulimit -Hn)")
    return best_of(args, measure)


def publish(args: argparse.Namespace, result: Result) -> None:
    """Write a run's result where --out and --no-docs say, and show its summary."""
    write(result, args.out, docs=not args.no_docs)
    print(result.summary)


def run(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, Path], dict[str, Any]],
    summarize: Callable[[dict[str, Any], argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any], dict[str, Any], argparse.Namespace, Context], str | tuple[str, str]],
    result: Result,
    needed_fds: int = 0,
    drop: Sequence[str] = ("results",),
) -> None:
    """A long benchmark's main once its options are parsed: measure, sum up, render, write.
    `result` names the run (title, page); its summary (and short form, when `render` gives a pair
    of texts) and data are filled in here."""
    raw, ctx = measured(args, lambda tmp: measure(args, tmp), needed_fds)
    s = summarize(raw, args)
    text = render(s, raw, args, ctx)
    result.summary, result.short = text if isinstance(text, tuple) else (text, result.short)
    result.data = record(ctx, args, s, raw, drop)
    publish(args, result)


def record(
    ctx: Context,
    args: argparse.Namespace,
    summary: Any,
    raw: Mapping[str, Any],
    drop: Sequence[str] = ("results",),
) -> dict[str, Any]:
    """A run's raw JSON: context, options, summary and measurements; `drop`: the bulky parts (the
    per-process histograms, megabytes, are summed in the summary)."""
    kept = {**raw, **{key: None for key in drop}}
    return {"context": ctx.__dict__, "args": recorded_args(args), "summary": summary, "raw": kept}


def recorded_args(args: argparse.Namespace) -> dict[str, str]:
    """A run's options as its JSON records them, but not the paths on the machine that ran it."""
    return {k: str(v) for k, v in vars(args).items() if k not in ("out", "profile", "screenshot")}


def reproduce(name: str, args: argparse.Namespace, defaults: Mapping[str, Any]) -> str:
    """`scripts/bench NAME` with the options of `defaults` that the run changed."""
    parts = [f"scripts/bench {name}"]
    for key, default in defaults.items():
        if (value := getattr(args, key)) != default:
            flag = f"--{key.replace('_', '-')}"
            parts.append(
                flag
                if value is True
                else f"{flag} {value:g}"
                if isinstance(value, float)
                else f"{flag} {value}"
            )
    return " ".join(parts)


def rotations(items: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """(round, item) for every item of every round, each round starting one item further on, so
    that no item always goes first."""
    for number in range(rounds):
        for item in [*items[number % len(items) :], *items[: number % len(items)]]:
            yield number, item


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class _Figures(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return ms(value) if format_spec == "ms" else super().format_field(value, format_spec)


def filled(rows: Iterable[Sequence[str]], figures: Mapping[str, Any]) -> list[list[str]]:
    """Table rows whose cells are format strings filled in from `figures` (`{key:ms}`: `ms()`)."""
    return [[_Figures().vformat(cell, (), figures) for cell in row] for row in rows]


Target = tuple[str, str, str, str, float]  # what, measured, target, the figure held to it, its limit


def targets(rows: Sequence[Target], figures: Mapping[str, Any]) -> str:
    """A table of targets, its cells filled from `figures`: met when the figure is under the limit
    (at most the limit, for a target shown as `≤ ...`); a row naming no figure has no target."""
    body = []
    for (what, measured, target), (*_, key, limit) in zip(
        filled((r[:3] for r in rows), figures), rows, strict=True
    ):
        met = None if not key else figures[key] <= limit if target.startswith("≤") else figures[key] < limit
        body.append([what, measured, target, "" if met is None else verdict(met)])
    return table(("", "measured", "target", ""), body)


def verdict(met: bool) -> str:
    """A target's cell: met, or missed in bold."""
    return "met" if met else "**missed**"


def ms(value: float) -> str:
    """Milliseconds as the summaries show them; `-` for none."""
    if math.isnan(value):
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
