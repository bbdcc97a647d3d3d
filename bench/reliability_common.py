"""The driver of the four load runs of docs/reliability.md: a run described as data (`LoadRun`: its
options, how its figures sum up, its summary as a `harness.Report`), its command line and summary
from that (its processes: a `stack.Stack`), chat posted alongside, the gateways' logs checked, and
the counts over the client processes' answers that the summaries are made of. Not a benchmark
itself (`scripts/bench` does not list it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.procs import Gateway

from .cli import parser
from .harness import BENCH, RELIABILITY, Report, Result
from .harness import run as run_benchmark
from .measure import Context
from .stack import Stack
from .watch import Background


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


def main(
    run: LoadRun,
    doc: str,
    measure: Callable[[argparse.Namespace, Path], dict[str, Any]],
    needed_fds: Callable[[argparse.Namespace], int],
    attempts: int = 1,
    drop: Sequence[str] = ("results",),
) -> None:
    """A load run from its command line to its summary (`harness.run`), with its plot if it has one."""
    args = parser(doc, run.options, run.helps, profile=True, attempts=attempts).parse_args()
    name = getattr(args, "name", run.name)
    result = Result(name, run.title, "", {}, script=run.name, page=RELIABILITY)

    def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
        if run.plot is None:
            return run.render(s, raw, args, ctx)
        result.plot, result.quoted = run.plot(raw, s, args, ctx), run.render(s, raw, args, ctx)
        if args.out.resolve() == BENCH.resolve():  # docs/reliability.md shows the committed plot
            result.quoted = run.render(s, raw, args, ctx, f"![{run.plot_alt}](../bench/{name}.svg)")
        return run.render(s, raw, args, ctx, f"![{run.plot_alt}]({name}.svg)")

    run_benchmark(args, measure, run.summarize, render, result, needed_fds(args), drop)


def logs(stack: Stack) -> list[dict[str, Any]]:
    """Each gateway's log checked for errors (`log_problems`)."""
    return [log_problems(gateway.service.log_path) for gateway in stack.gateways]


class Chatter(Background):
    """Chat posted through a gateway at `rate` messages a second of `chars` characters each, by an
    operator over as many WebSockets as the gateway's per-socket rate limit (20 a second) needs."""

    PER_SOCKET = 15.0

    def __init__(self, gateway: Gateway, token: str, rate: float, chars: int) -> None:
        self.gateway, self.token, self.rate, self.chars = gateway, token, rate, chars
        self.sent = 0
        self.failed: dict[str, int] = {}
        super().__init__()

    def _run(self) -> None:
        from websockets.sync.client import connect

        if self.rate <= 0:
            return
        headers = {"Authorization": f"Bearer {self.token}"}
        sockets = [
            connect(self.gateway.ws_url, additional_headers=headers, compression=None, open_timeout=30)
            for _ in range(max(1, math.ceil(self.rate / self.PER_SOCKET)))
        ]
        text = json.dumps(
            {"type": "chat", "text": ("slow consumer bench " * (self.chars // 20 + 1))[: self.chars]}
        )
        started = time.monotonic()
        try:
            while not self._stop.wait(max(0.0, started + self.sent / self.rate - time.monotonic())):
                try:
                    sockets[self.sent % len(sockets)].send(text)
                except Exception as exc:  # counted and reported, the run goes on
                    self.failed[type(exc).__name__] = self.failed.get(type(exc).__name__, 0) + 1
                self.sent += 1
        finally:
            for socket in sockets:
                with contextlib.suppress(Exception):
                    socket.close()


PROBLEMS = {  # in a service's log (plain format)
    "error": re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL) .*$", re.MULTILINE),
    "traceback": re.compile(r"^.*Traceback \(most recent call last\).*$", re.MULTILINE),
}


def log_problems(path: Path, examples: int = 5) -> dict[str, Any]:
    """ERROR/CRITICAL lines and tracebacks in a service's log, with the first few of each."""
    text = path.read_text(errors="replace") if path.exists() else ""
    found = {kind: pattern.findall(text) for kind, pattern in PROBLEMS.items()}
    shown = {kind: [line.strip()[:300] for line in lines[:examples]] for kind, lines in found.items()}
    return {kind: len(lines) for kind, lines in found.items()} | {"examples": shown}
