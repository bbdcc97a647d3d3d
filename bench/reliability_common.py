"""The driver of the four load runs of docs/reliability.md: a run described as data (`LoadRun`: its
options, how its figures sum up, its summary as a `harness.Report`), its command line and summary
from that, its processes (`Load`: gateways, fleet, pinned client processes, what each cost), chat
posted alongside, the gateways' logs checked, and the counts over the client processes' answers
that the summaries are made of. Not a benchmark itself (`scripts/bench` does not list it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.procs import Gateway

from .cli import parser
from .harness import BENCH, RELIABILITY, Report, Result, pin
from .harness import run as run_benchmark
from .measure import Context, CpuWindow, total
from .stack import Spread, Stack, make_token, open_window, wait_for_hosts
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


def counted(results: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Counts by kind under `key`, added up over the client processes' answers."""
    return dict(sum((Counter(r.get(key) or {}) for r in results), Counter[str]()))


def ready_counts(raw: Mapping[str, Any]) -> tuple[int, int]:
    """Clients connected and failed, summed over the processes' `ready`."""
    return total(raw["ready"], "ready"), total(raw["ready"], "failed")


def main(
    run: LoadRun,
    doc: str,
    measure: Callable[[argparse.Namespace, Path], dict[str, Any]],
    needed_fds: Callable[[argparse.Namespace], int],
    attempts: int = 1,
    drop: Sequence[str] = ("results",),
) -> None:
    """A load run from its command line to its summary (`harness.run`), with its plot if it has one."""
    args = parser(doc, run.options, run.helps, attempts=attempts).parse_args()
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


class Load(Stack):
    """A load run's Redis, gateways, simulated fleet and client processes, pinned (`harness.pin`)."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        super().__init__(workdir)
        self.args, self.tokens, self.clients = args, workdir / "tokens.txt", Spread()

    def start(self, gateways: int = 1, fleet: bool = True, **env: str) -> Load:
        """Redis, a token, the gateways (with `env`), and unless told not to the fleet."""
        self.store, self.token = self.redis(), make_token(self.tokens)
        assert self.store.service is not None
        names = [f"gateway-{i}" for i in range(gateways)] if gateways > 1 else ["gateway"]
        self.gateways = [self.gateway(self.store.url, self.tokens, name, **env) for name in names]
        self.pids, self.redis_pid = [g.service.pid for g in self.gateways], self.store.service.pid
        pin(self.args, self.pids, [self.redis_pid])
        if fleet:
            self.start_fleet()
        return self

    def start_fleet(self) -> None:
        """The simulated fleet, once every gateway lists it."""
        self.agent = self.simulated_fleet(self.store.url, self.args.hosts)
        pin(self.args, [], [self.agent.pid])
        for gateway in self.gateways:
            wait_for_hosts(gateway, self.token, self.args.hosts)

    def follow(self, count: int, processes: int, name: str = "clients", /, **options: object) -> Spread:
        """`count` clients following `fleet` on the gateways, timed against Redis."""
        # --light: only the probes parse whole frames, so the clients keep up on a machine they share.
        flags = {"mode": "fleet", "light": True, "batch": not self.args.no_batch, "token": self.token}
        flags |= {"redis": self.store.url, **options}
        spread = self.spread([g.ws_url for g in self.gateways], count, processes, name, **flags)
        pin(self.args, [], spread.pids)
        self.clients += spread
        return spread

    def window(self, seconds: float = 0, grace: float = 0, delay: float = 1.0) -> tuple[CpuWindow, float]:
        """A CPU window over every process, and the end of the clients' window of `seconds` (0: none)."""
        end = open_window(self.clients.processes, seconds, grace, delay)[1] if seconds else math.inf
        return CpuWindow([*self.pids, self.agent.pid, self.redis_pid, *self.clients.pids]), end

    def costs(self, cpu: Mapping[int, float], listed: bool = False) -> dict[str, Any]:
        """The CPU of each process over a window, % of a core (`listed`: a list, one a gateway)."""
        gateways = [cpu[p] for p in self.pids]
        return {
            "gateway_cpu_pct": gateways if listed else gateways[0],
            "agent_cpu_pct": cpu[self.agent.pid],
            "redis_cpu_pct": cpu[self.redis_pid],
            "clients_cpu_pct": sum(cpu[p] for p in self.clients.pids),
        }

    def logs(self) -> list[dict[str, Any]]:
        """Each gateway's log checked for errors (`log_problems`)."""
        return [log_problems(gateway.service.log_path) for gateway in self.gateways]


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
