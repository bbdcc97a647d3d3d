"""What the reliability benchmarks share: one options parser, their report's shape, client
processes spread over gateways and their answers summed, chat posted alongside, the gateway's log
checked. Not a benchmark itself (`scripts/bench` does not list it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .harness import common_options, table
from .measure import histogram, quantile_ms
from .stack import ClientProcess, Gateway, Stack
from .watch import Background

Spread = Sequence[tuple[ClientProcess, int, int]]
HELP = {
    "clients": "WebSocket clients",
    "hosts": "simulated hosts at 1 Hz",
    "ping_interval": "the gateway's WebSocket pings, s",
    "processes": "client processes",
    "probes": "clients that time every host entry",
    "probe_every": "one client in N times every entry",
    "no_batch": "one frame per message (not /ws?batch=1)",
}


def load_parser(
    doc: str,
    defaults: Mapping[str, Any],
    helps: Mapping[str, str],
    attempts: int = 1,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> argparse.ArgumentParser:
    """A load run's options: one per entry of `defaults` (a bool is a bare flag), then the common ones."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for key, default in defaults.items():
        flag, text = f"--{key.replace('_', '-')}", {**HELP, **helps}.get(key)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
        else:
            parser.add_argument(
                flag, type=type(default), default=default, help=text, choices=(choices or {}).get(key)
            )
    common_options(parser, attempts)
    return parser


def report(head: str, rows: Sequence[Sequence[str]], *sections: str, reproduce: str) -> str:
    """A run's text: its sentence, the targets table, further sections, the command again."""
    body = table(("", "measured", "target", ""), rows)
    return head + body + "".join("\n\n" + section for section in sections) + f"\n\nReproduce: `{reproduce}`"


def details(*rows: tuple[str, str], raw: Mapping[str, Any], args: argparse.Namespace) -> str:
    """The "also measured" table, ending with how busy the rest of the machine was."""
    disturbed = " (**disturbed run**)" if raw["others_cpu_pct"] > args.max_others else ""
    machine = [
        ("CPU of the other processes on the machine", f"{raw['others_cpu_pct']:.0f}%{disturbed}"),
        (
            "kernel interrupt work (mostly loopback traffic) / CPU stolen by the hypervisor",
            f"{raw['softirq_cpu_pct']:.0f}% / {raw['stolen_cpu_pct']:.0f}%",
        ),
    ]
    return table(("also measured", "value"), [*rows, *machine])


def command_line(name: str, args: argparse.Namespace, defaults: Mapping[str, Any]) -> str:
    """`scripts/bench NAME` with the options that differ from their defaults."""
    parts = [f"scripts/bench {name}"]
    for key, default in defaults.items():
        value = getattr(args, key)
        if value != default:
            flag = f"--{key.replace('_', '-')}"
            parts.append(
                flag
                if value is True
                else f"{flag} {value:g}"
                if isinstance(value, float)
                else f"{flag} {value}"
            )
    return " ".join(parts)


def counts(parts: Mapping[str, int], empty: str = "none") -> str:
    """Counts by kind, as `kind: n, ...`."""
    return ", ".join(f"{key}: {value:,}" for key, value in sorted(parts.items())) or empty


def add_counts(parts: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in (part or {}).items():
            total[key] = total.get(key, 0) + int(value)
    return total


def ready_counts(raw: Mapping[str, Any]) -> tuple[int, int]:
    """Clients connected and failed, summed over the processes' `ready`."""
    return sum(r.get("ready", 0) for r in raw["ready"]), sum(r.get("failed", 0) for r in raw["ready"])


def quantiles(results: Sequence[Mapping[str, Any]], key: str, name: str) -> dict[str, float]:
    """`NAME_p50_ms`, `NAME_p99_ms` and `NAME_max_ms` of the processes' `key` histograms summed."""
    hist, bin_ms = histogram(r[key] for r in results), results[0]["bin_ms"] if results else 0.1
    shares = {"p50": 0.5, "p99": 0.99, "max": 1.0}
    return {f"{name}_{label}_ms": quantile_ms(hist, share, bin_ms) for label, share in shares.items()}


def fleet_clients(
    stack: Stack, urls: Sequence[str], args: argparse.Namespace, processes: int, **options: object
) -> Spread:
    """`args.clients` clients following `fleet`; with --light only the probes parse whole frames, so
    the client processes keep up with the gateways on a machine they share."""
    fleet = {"mode": "fleet", "light": True, "exact_match": True, "batch": not args.no_batch}
    return stack.spread(urls, args.clients, processes, **(fleet | options))


def open_window(spread: Spread, seconds: float, grace: float, delay: float = 1.0) -> tuple[float, float]:
    """Tell every process the window to measure (from `delay` s on); wait until it opens."""
    start = time.time() + delay
    for process, _, _ in spread:
        process.send({"cmd": "window", "start": start, "end": start + seconds, "grace": grace})
    time.sleep(max(0.0, start - time.time()))
    return start, start + seconds


class Chatter(Background):
    """Chat posted through a gateway at `rate` messages a second of `chars` characters each, by an
    operator over as many WebSockets as the gateway's per-socket rate limit (20 a second) needs."""

    PER_SOCKET = 15.0

    def __init__(self, gateway: Gateway, token: str, rate: float, chars: int) -> None:
        self.gateway, self.token, self.rate, self.chars = gateway, token, rate, chars
        self.sent = 0
        self.failed: dict[str, int] = {}
        super().__init__()

    def _wanted(self) -> bool:
        return self.rate > 0

    def _run(self) -> None:
        from websockets.sync.client import connect

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


def _answers(spread: Spread, event: str, timeout: float) -> list[dict[str, Any] | RuntimeError]:
    answers: list[dict[str, Any] | RuntimeError] = []
    for process, _, _ in spread:
        try:
            answers.append(process.expect(event, timeout))
        except RuntimeError as exc:
            print(f"note: {exc}")
            answers.append(exc)
    return answers


def gather(spread: Spread, event: str, timeout: float) -> list[dict[str, Any] | None]:
    """Every process's next `event` (None for a process that did not say it)."""
    return [None if isinstance(a, RuntimeError) else a for a in _answers(spread, event, timeout)]


def gather_ready(spread: Spread, timeout: float) -> list[dict[str, Any]]:
    """Every process's `ready` (it comes when each of its clients connected or failed, or after
    its --ready-timeout); a process that says nothing in time counts its clients as failed."""
    return [
        {"event": "ready", "ready": 0, "failed": n, "failures": {str(a): n}}
        if isinstance(a, RuntimeError)
        else a
        for a, (_, n, _) in zip(_answers(spread, "ready", timeout), spread, strict=True)
    ]


_LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
_KINDS = {"ERROR": "error", "CRITICAL": "error", "WARNING": "warning"}


def log_problems(path: Path, examples: int = 5) -> dict[str, Any]:
    """ERROR/CRITICAL lines and tracebacks in a service's log (plain format), and WARNING lines,
    with the first few of each kind."""
    found: dict[str, Any] = {"error": 0, "traceback": 0, "warning": 0, "lines": 0}
    seen: dict[str, list[str]] = {"error": [], "traceback": [], "warning": []}
    with contextlib.suppress(FileNotFoundError), path.open(errors="replace") as log:
        for line in log:
            found["lines"] += 1
            level = _LEVEL.match(line)
            kind = (
                "traceback" if "Traceback (most recent call last)" in line else level and _KINDS.get(level[1])
            )
            if kind:
                found[kind] += 1
                if len(seen[kind]) < examples:
                    seen[kind].append(line.strip()[:300])
    return {**found, "examples": seen}
