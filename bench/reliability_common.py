"""What the reliability benchmarks share: their report's shape, client processes spread over
gateways, chat posted alongside, and the gateway's log checked.

Not a benchmark itself (`scripts/bench` does not list it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .harness import table
from .stack import ClientProcess, Gateway

NOT_RUN = "(not run yet at full size)"


def load_parser(
    doc: str, defaults: Mapping[str, Any], duration: str = "seconds measured"
) -> argparse.ArgumentParser:
    """The options every load run starts with: its clients, its hosts, the window's length."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--clients", type=int, default=defaults["clients"])
    parser.add_argument("--hosts", type=int, default=defaults["hosts"])
    parser.add_argument("--duration", type=float, default=defaults["duration"], help=duration)
    return parser


def report(head: str, rows: Sequence[Sequence[str]], *sections: str, reproduce: str) -> str:
    """A run's text: its sentence, the targets table, further sections, the command again."""
    body = table(("", "measured", "target", ""), rows)
    return head + body + "".join("\n\n" + section for section in sections) + f"\n\nReproduce: `{reproduce}`"


def disturbed(raw: Mapping[str, Any], args: argparse.Namespace) -> str:
    return " (**disturbed run**)" if raw["others_cpu_pct"] > args.max_others else ""


def machine_rows(raw: Mapping[str, Any], args: argparse.Namespace) -> list[tuple[str, str]]:
    return [
        ("CPU of the other processes on the machine", f"{raw['others_cpu_pct']:.0f}%{disturbed(raw, args)}"),
        (
            "kernel interrupt work (mostly loopback traffic) / CPU stolen by the hypervisor",
            f"{raw['softirq_cpu_pct']:.0f}% / {raw['stolen_cpu_pct']:.0f}%",
        ),
    ]


def command_line(name: str, args: argparse.Namespace, defaults: Mapping[str, Any]) -> str:
    """`scripts/bench NAME` with the options that differ from their defaults."""
    parts = [f"scripts/bench {name}"]
    for key, default in defaults.items():
        value = getattr(args, key)
        if value != default:
            flag = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):
                parts.append(flag)
            else:
                parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)


class Chatter:
    """Chat posted through a gateway at `rate` messages a second of `chars` characters each, by an
    operator over as many WebSockets as the gateway's per-socket rate limit (20 a second) needs."""

    PER_SOCKET = 15.0

    def __init__(self, gateway: Gateway, token: str, rate: float, chars: int) -> None:
        self.gateway = gateway
        self.token = token
        self.rate = rate
        self.chars = chars
        self.sent = 0
        self.failed: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Chatter:
        if self.rate > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _run(self) -> None:
        from websockets.sync.client import connect

        sockets = [
            connect(
                self.gateway.ws_url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                compression=None,
                open_timeout=30,
            )
            for _ in range(max(1, math.ceil(self.rate / self.PER_SOCKET)))
        ]
        text = json.dumps(
            {"type": "chat", "text": ("slow consumer bench " * (self.chars // 20 + 1))[: self.chars]}
        )
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                due = started + self.sent / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                try:
                    sockets[self.sent % len(sockets)].send(text)
                except Exception as exc:  # counted and reported, the run goes on
                    self.failed[type(exc).__name__] = self.failed.get(type(exc).__name__, 0) + 1
                self.sent += 1
        finally:
            for socket in sockets:
                with contextlib.suppress(Exception):
                    socket.close()


def gather_ready(spread: Sequence[tuple[ClientProcess, int, int]], timeout: float) -> list[dict[str, Any]]:
    """Every process's `ready` (it comes when each of its clients connected or failed, or after
    its --ready-timeout); a process that says nothing in time counts its clients as failed."""
    ready = []
    for process, count, _ in spread:
        try:
            ready.append(process.expect("ready", timeout))
        except RuntimeError as exc:
            print(f"note: {exc}")
            ready.append({"event": "ready", "ready": 0, "failed": count, "failures": {str(exc): count}})
    return ready


def gather(
    spread: Sequence[tuple[ClientProcess, int, int]], event: str, timeout: float
) -> list[dict[str, Any] | None]:
    """Every process's next `event` (None for a process that did not say it)."""
    answers: list[dict[str, Any] | None] = []
    for process, _, _ in spread:
        try:
            answers.append(process.expect(event, timeout))
        except RuntimeError as exc:
            print(f"note: {exc}")
            answers.append(None)
    return answers


def add_counts(parts: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in (part or {}).items():
            total[key] = total.get(key, 0) + int(value)
    return total


# --- the gateway's log ---------------------------------------------------------------------

_LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def log_problems(path: Path, examples: int = 5) -> dict[str, Any]:
    """ERROR/CRITICAL lines and tracebacks in a service's log (plain format), and WARNING lines,
    with the first few of each kind."""
    counts = {"error": 0, "traceback": 0, "warning": 0}
    seen: dict[str, list[str]] = {"error": [], "traceback": [], "warning": []}
    if not path.exists():
        return {**counts, "examples": seen, "lines": 0}
    lines = 0
    with path.open(errors="replace") as log:
        for line in log:
            lines += 1
            level = _LEVEL.match(line)
            kind = None
            if "Traceback (most recent call last)" in line:
                kind = "traceback"
            elif level and level[1] in ("ERROR", "CRITICAL"):
                kind = "error"
            elif level and level[1] == "WARNING":
                kind = "warning"
            if kind:
                counts[kind] += 1
                if len(seen[kind]) < examples:
                    seen[kind].append(line.strip()[:300])
    return {**counts, "examples": seen, "lines": lines}
