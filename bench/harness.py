"""What every benchmark hands in, the one writer that files it, and how its summary reads.

A `Result` goes to its raw figures in `bench/results/NAME.json` (ignored by git), its committed
summary `bench/NAME.md` (and `NAME.svg`), and the `<!-- bench:NAME -->` blocks of the page that
explains it and, for a short form, of the README. A `Report` renders that summary from the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
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
SERVER_CORE, LOAD_CORE = 0, 1  # fan-out benchmarks: the servers measured / Redis and the load
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
    if docs:
        quote(result.page, result.name, result.quoted or result.summary)
        if result.short is not None:
            quote(README, result.name, result.short)
    print(f"wrote {summary} and {raw / (result.name + '.json')}")
    return summary


def quote(path: Path, name: str, text: str) -> None:
    """Replace the `name` block in `path` (a note when the file has no such block)."""
    original = path.read_text() if path.exists() else ""
    if f"<!-- bench:{name} -->\n" not in original:
        print(f"note: {path.name} has no <!-- bench:{name} --> block; not quoted there")
        return
    path.write_text(
        re.sub(
            rf"(<!-- bench:{re.escape(name)} -->\n)(?:.*?\n)??(<!-- /bench -->)",  # an empty block too
            lambda m: m.group(1) + text.strip("\n") + "\n" + m.group(2),
            original,
            count=1,
            flags=re.DOTALL,
        )
    )


def common_options(parser: argparse.ArgumentParser, attempts: int = 1, settle: float = 5) -> None:
    """The options every long benchmark takes: quiet machine, attempts, where results go."""
    parser.add_argument("--settle", type=float, default=settle, help="seconds to settle before measuring")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait (minutes at most) for a lower load")
    parser.add_argument("--max-others", type=float, default=30.0, help="%% of a core others may use")
    parser.add_argument("--attempts", type=int, default=attempts, help="runs while others disturb the window")
    parser.add_argument("--no-pin", action="store_true", help="leave processes unpinned (see `pin`)")
    output_options(parser)


def pin(args: argparse.Namespace, servers: Iterable[int], load: Iterable[int] = ()) -> None:
    """Every thread of the `servers` on core 0, of the `load` and this process on core 1."""
    # Unpinned, a client woken by a write can take the writer's core: its CPU then depends on the
    # scheduler (docs/benchmarks.md, fan-out against peers).
    if args.no_pin or (os.cpu_count() or 1) < 2:
        return
    for core, pids in ((SERVER_CORE, servers), (LOAD_CORE, [os.getpid(), *load])):
        for task in [task for pid in pids for task in Path(f"/proc/{pid}/task").glob("*")]:
            with contextlib.suppress(OSError):  # a thread that has ended meanwhile
                os.sched_setaffinity(int(task.name), {core})


def output_options(parser: argparse.ArgumentParser) -> None:
    """Where a run's results go: --out (a scratch folder for trial runs) and --no-docs."""
    parser.add_argument("--out", type=Path, default=BENCH, help="folder for NAME.md (default bench/)")
    parser.add_argument("--no-docs", action="store_true", help="do not quote figures in docs (trial runs)")


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
    return {k: str(v) for k, v in vars(args).items() if k not in ("out", "profile")}


def reproduce(name: str, args: argparse.Namespace, defaults: Mapping[str, Any]) -> str:
    """`scripts/bench NAME` with the options of `defaults` that the run changed (a tuple default: the
    choices, its first the default; a bool: a bare flag; a list: values one after the other)."""
    parts = [f"scripts/bench {name}"]
    for key, default in defaults.items():
        value, flag = getattr(args, key), f"--{key.replace('_', '-')}"
        if value != (default[0] if isinstance(default, tuple) else default):
            values = value if isinstance(value, list) else [] if value is True else [value]
            parts += [flag, *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
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


def verdict(met: bool) -> str:
    """A target's cell: met, or missed in bold."""
    return "met" if met else "**missed**"


def ms(value: float) -> str:
    """Milliseconds as the summaries show them; `-` for none."""
    return "-" if math.isnan(value) else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


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


def fill(text: str, figures: Mapping[str, Any]) -> str:
    """`text` with its `{figure:format}` fields filled in (`_Figures` says the formats)."""
    return _Figures().vformat(text, (), figures)


def filled(rows: Iterable[Sequence[str]], figures: Mapping[str, Any]) -> list[list[str]]:
    """Table rows whose cells are format strings, filled in from `figures`."""
    return [[fill(cell, figures) for cell in row] for row in rows]


def rows(text: str) -> list[list[str]]:
    """Table rows written one a line, cells apart by ` | `; an indented line goes on with the one before."""
    lines = re.sub(r"\n[ \t]+", " ", text).splitlines()
    return [[cell.strip() for cell in line.split(" | ")] for line in lines if line.strip()]


def listing(header: str, row: str, items: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of `items`, a row each: `header` and `row` are written as in `rows`."""
    return table(rows(header)[0], (filled(rows(row), item)[0] for item in items))


MACHINE = """
CPU of the other processes on the machine | {others_cpu_pct:.0f}%{disturbed}
kernel interrupt work (mostly loopback traffic) / CPU stolen by the hypervisor
    | {softirq_cpu_pct:.0f}% / {stolen_cpu_pct:.0f}%
"""


@dataclass(frozen=True, kw_only=True)
class Report:
    """A summary as format strings over a run's figures: `head` (a sentence) and the `targets` (as
    `goals` reads them) are its short form; then sections of its own, the table of what `also` was
    measured (rows `what | measured`; with `machine`, the rest of the machine), the command again."""

    name: str
    title: str
    options: Mapping[str, Any]  # defaults, for `reproduce`
    head: str
    targets: str
    also: str
    target: Mapping[str, float] = field(default_factory=dict)  # limits, as `{target[KEY]}` in the text
    machine: bool = True

    def summary(
        self, s: Mapping[str, Any], raw: Mapping[str, Any], args: argparse.Namespace, ctx: Context, *more: str
    ) -> tuple[str, str]:
        """The summary of a run (`more` after its targets) and its short form. A target is met as
        `s["met"]` says, or else when its figure is under its limit in `target`."""
        figures = {**vars(args), **raw, **s, "context": ctx.sentence(), "target": self.target}
        if "met" not in figures:
            figures["met"] = {key: figures[key] < limit for key, limit in self.target.items()}
        disturbed = figures.get("others_cpu_pct", 0) > args.max_others
        figures["disturbed"] = " (**disturbed run**)" if disturbed else ""
        short = fill(" ".join(self.head.split()), figures) + "\n\n" + goals(rows(self.targets), figures)
        also = filled(rows(self.also + (MACHINE if self.machine else "")), figures)
        command = f"Reproduce: `{reproduce(self.name, args, self.options)}`"
        return "\n\n".join([short, *more, table(("also measured", "value"), also), command]), short


def goals(rows: Iterable[Sequence[str]], figures: Mapping[str, Any]) -> str:
    """A table of targets, rows `what | measured | target | KEY` filled from `figures`: met when
    `figures["met"][KEY]` is true; a row naming no KEY, or whose KEY is None there, has no target."""
    body = []
    for what, measured, target, key in ([*row, "", ""][:4] for row in rows):
        met = figures["met"][key] if key else None
        body.append([what, measured, "" if met is None else target, "" if met is None else verdict(met)])
    return table(("", "measured", "target", ""), filled(body, figures))
