"""What the four load runs of docs/reliability.md share: one driver from each run's description
(`summaries.report.LoadRun`), client processes spread over gateways and their answers gathered, chat
posted alongside, the gateway's log checked. Not a benchmark itself (`scripts/bench` does not list it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from testbed.procs import Gateway

from .harness import BENCH, RELIABILITY, Result, common_options
from .harness import run as run_benchmark
from .measure import Context
from .stack import FleetStack, Spread
from .summaries.report import LoadRun
from .watch import Background

HELP = {
    "clients": "WebSocket clients",
    "hosts": "simulated hosts at 1 Hz",
    "ping_interval": "the gateway's WebSocket pings, s",
    "processes": "client processes",
    "probes": "clients that time every host entry",
    "probe_every": "one client in N times every entry",
    "no_batch": "one frame per message (not /ws?batch=1)",
}


def parser(run: LoadRun, doc: str, attempts: int = 1) -> argparse.ArgumentParser:
    """A load run's options: one per entry of its `options`, then the common ones."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n", maxsplit=1)[0].split()))
    for key, default in run.options.items():
        flag, text = f"--{key.replace('_', '-')}", run.helps.get(key, HELP.get(key))
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, choices=default, default=default[0], help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text)
    common_options(parser, attempts)
    return parser


def main(
    run: LoadRun,
    doc: str,
    measure: Callable[[argparse.Namespace, Path], dict[str, Any]],
    needed_fds: Callable[[argparse.Namespace], int],
    attempts: int = 1,
    drop: Sequence[str] = ("results",),
) -> None:
    """A load run from its command line to its summary (`harness.run`), with its plot if it has one."""
    args = parser(run, doc, attempts).parse_args()
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


def following(fleet: FleetStack, args: argparse.Namespace) -> dict[str, object]:
    """The flags of clients following `fleet` on the fleet's gateways, timed against its Redis; with
    --light only the probes parse whole frames, so the client processes keep up with the gateways on
    a machine they share."""
    options = {"mode": "fleet", "light": True, "batch": not args.no_batch}
    return options | {"token": fleet.token, "redis": fleet.redis.url}


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


def gather(spread: Spread, event: str, timeout: float) -> list[dict[str, Any] | None]:
    """Every process's next `event`: None for a process that did not say it in time, but for a
    `ready` (it comes when each of its clients connected or failed, or after its --ready-timeout)
    its clients counted as failed."""
    answers: list[dict[str, Any] | None] = []
    for process, clients, _ in spread:
        try:
            answers.append(process.expect(event, timeout))
        except RuntimeError as exc:
            print(f"note: {exc}")
            failed = {"ready": 0, "failed": clients, "failures": {"no `ready` in time": clients}}
            answers.append({"event": "ready", **failed} if event == "ready" else None)
    return answers


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
