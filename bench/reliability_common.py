"""What the reliability benchmarks share: the gateway watched over time, client processes spread
over gateways, the gateway's log checked, the results written and quoted in docs/reliability.md,
and a plain SVG chart.

Not a benchmark itself (`scripts/bench` does not list it). Everything it talks to is on
127.0.0.1: the gateways' `/metrics` and Redis's `INFO`, both started by the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from tests.support.tcpqueues import established

from .measure import Context, cpu_seconds, raise_fd_limit, rss_kib, wait_for_quiet
from .report import ROOT, quote, table
from .stack import ClientProcess, Gateway, Stack

DOCS = ROOT / "docs" / "reliability.md"
NOT_RUN = "(not run yet at full size)"


# --- the command line every reliability benchmark shares ------------------------------------


def common_options(parser: argparse.ArgumentParser, attempts: int = 1) -> None:
    parser.add_argument("--settle", type=float, default=5, help="seconds to settle before measuring")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait (up to 5 min) for a lower load")
    parser.add_argument(
        "--max-others", type=float, default=30.0, help="%% of a core other processes may use in the window"
    )
    parser.add_argument("--attempts", type=int, default=attempts, help="runs while others disturb the window")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench", help="folder for NAME.md / NAME.json (default bench/)"
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="do not quote the figures in docs/reliability.md (trial runs)"
    )


def prepare(args: argparse.Namespace, needed_fds: int) -> int:
    """Raise the open-files limit (children inherit it) and say when it is short of `needed_fds`."""
    limit = raise_fd_limit()
    if limit < needed_fds:
        print(
            f"note: open-files limit {limit} is under the ~{needed_fds} this run needs; "
            "raise the hard limit (ulimit -Hn) to reach every connection"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    return limit


def best_of(
    args: argparse.Namespace, measure: Callable[[Path], dict[str, Any]]
) -> tuple[dict[str, Any], Context]:
    """Run `measure` (in a fresh temporary folder) up to --attempts times while other processes
    took more than --max-others % of a core in its window; keep the least disturbed run."""
    best: tuple[dict[str, Any], Context] | None = None
    for attempt in range(max(1, args.attempts)):
        wait_for_quiet(args.max_load, 300)
        ctx = Context.now()
        with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
            raw = measure(Path(tmp))
        ctx = ctx.finished()
        print(f"attempt {attempt + 1}: the rest of the machine used {raw['others_cpu_pct']:.0f}% of a core")
        if best is None or raw["others_cpu_pct"] < best[0]["others_cpu_pct"]:
            best = (raw, ctx)
        if raw["others_cpu_pct"] <= args.max_others:
            break
    assert best is not None
    return best


# --- results -------------------------------------------------------------------------------


def write_results(
    args: argparse.Namespace,
    name: str,
    title: str,
    full: str,
    data: Mapping[str, Any],
    docs_text: str | None = None,
    script: str | None = None,
) -> None:
    """bench/NAME.md and .json (or in --out), and the NAME block of docs/reliability.md (`full`,
    or `docs_text` where links differ). `script`: the benchmark's module, when not NAME."""
    (args.out / f"{name}.md").write_text(
        f"# {title}\n\nWritten by `bench/{script or name}.py`; do not edit by hand. "
        f"See docs/reliability.md for what is measured and how.\n\n{full}\n"
    )
    (args.out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    if not args.no_docs and not quote(DOCS, name, docs_text or full):
        print(f"note: docs/reliability.md has no <!-- bench:{name} --> block; not quoted there")
    print(f"wrote {args.out / (name + '.md')}")


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


def pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


# --- the processes watched -----------------------------------------------------------------


def fd_count(pid: int) -> int:
    """Open file descriptors of a process (entries of /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_over(pids: Sequence[int], seconds: float) -> dict[int, float]:
    """Each process's CPU over the next `seconds`, in % of one core."""
    start = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {p: (cpu_seconds(p) - start[p]) / elapsed * 100 for p in pids}


def gateway_metrics(gateway: Gateway, timeout: float = 5.0) -> dict[str, float]:
    """The gateway's Prometheus metrics (`/metrics`, no token), by name with labels."""
    text = httpx.get(gateway.url + "/metrics", timeout=timeout).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


@dataclass
class Reading:
    t: float  # seconds since the watch started
    rss_kib: int
    fds: int
    cpu_s: float
    metrics: dict[str, float] = field(default_factory=dict)


class Watch:
    """A thread reading a process's RSS, open files and CPU (and its gateway's metrics) every
    `every` seconds until stopped; a reading that fails is skipped, never fatal."""

    def __init__(self, pid: int, every: float, gateway: Gateway | None = None) -> None:
        self.pid = pid
        self.every = every
        self.gateway = gateway
        self.readings: list[Reading] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def now(self) -> float:
        return time.monotonic() - self.started

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
                metrics = gateway_metrics(self.gateway, timeout=max(1.0, self.every)) if self.gateway else {}
                self.readings.append(
                    Reading(self.now(), rss_kib(self.pid), fd_count(self.pid), cpu_seconds(self.pid), metrics)
                )
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def between(self, start: float, end: float) -> list[Reading]:
        return [r for r in self.readings if start <= r.t <= end]


@dataclass
class Queues:
    t: float
    unread: int  # bytes in the clients' kernel receive buffers, not read by them yet
    unread_max: int  # the most one client had
    behind: int  # clients with more than two seconds of frames unread (see QueueWatch)
    unsent: int  # bytes in the gateway's kernel send buffers, not taken by the clients yet


class QueueWatch:
    """A thread reading, every `every` seconds, what waits in the kernel on the connections to a
    gateway's port (`/proc/net/tcp`): on the clients' side what they have not read yet, on the
    gateway's what they have not taken yet. Tells a gateway that is slow to send from clients that
    are slow to read. Connections from `exclude` (client ports) are left out."""

    def __init__(
        self, port: int, clock: Callable[[], float], every: float = 1.0, frame_bytes: int = 0
    ) -> None:
        self.port = port
        self.clock = clock
        self.every = every
        # What a client is sent a second: "behind" is more than twice that (one frame that has just
        # arrived is not a backlog).
        self.frame_bytes = frame_bytes
        self.exclude: set[int] = set()
        self.readings: list[Queues] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.readings.append(self.read())
            self._stop.wait(self.every)

    def read(self) -> Queues:
        unread: list[int] = []
        unsent = 0
        for queue in established():
            if queue.remote_port == self.port and queue.local_port not in self.exclude:
                unread.append(queue.receive_queue)
            elif queue.local_port == self.port and queue.remote_port not in self.exclude:
                unsent += queue.send_queue
        behind = sum(1 for q in unread if q > 2 * self.frame_bytes) if self.frame_bytes else 0
        return Queues(self.clock(), sum(unread), max(unread, default=0), behind, unsent)

    def between(self, start: float, end: float) -> list[Queues]:
        return [q for q in self.readings if start <= q.t <= end]


def mean(values: Iterable[float]) -> float:
    listed = list(values)
    return statistics.fmean(listed) if listed else math.nan


def sockets_to(pid: int, ports: Iterable[int]) -> dict[str, int]:
    """The gateway's TCP sockets whose peer is one of these (client) ports, by state."""
    wanted = set(ports)
    states: dict[str, int] = {}
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port in wanted:
                states[conn.status] = states.get(conn.status, 0) + 1
    return states


def sockets_of(pid: int, redis_port: int, own_port: int) -> dict[str, int]:
    """A server's TCP sockets: to Redis, of its own listening port's clients, and the rest."""
    kinds = {"redis": 0, "clients": 0, "other": 0}
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == redis_port:
                kinds["redis"] += 1
            elif conn.raddr and conn.laddr.port == own_port:
                kinds["clients"] += 1
            else:
                kinds["other"] += 1
    return kinds


def held_ports(pid: int, ports: Iterable[int]) -> set[int]:
    """Which of these (client) ports the process still has a TCP socket to."""
    wanted = set(ports)
    held: set[int] = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port in wanted:
                held.add(conn.raddr.port)
    return held


def redis_cpu_and_commands(url: str, pid: int) -> tuple[float, dict[str, dict[str, float]]]:
    """Redis's CPU seconds so far and its per-command `calls` and `usec` (INFO commandstats)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    commands = {
        key.removeprefix("cmdstat_"): {"calls": float(v["calls"]), "usec": float(v["usec"])}
        for key, v in stats.items()
        if isinstance(v, dict)
    }
    return cpu_seconds(pid), commands


def redis_out_bytes(url: str) -> int:
    """Bytes Redis has written to its clients so far (INFO stats `total_net_output_bytes`)."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_net_output_bytes"])
    finally:
        client.close()


def command_rates(
    before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]], seconds: float
) -> dict[str, dict[str, float]]:
    """Calls per second and µs of Redis time per second, per command, between two readings."""
    rates = {}
    for name, now in after.items():
        then = before.get(name, {"calls": 0.0, "usec": 0.0})
        calls = now["calls"] - then["calls"]
        if calls > 0:
            rates[name] = {
                "calls_per_s": calls / seconds,
                "usec_per_s": (now["usec"] - then["usec"]) / seconds,
            }
    return rates


def subscribers(url: str, channel: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        numsub = client.pubsub_numsub(channel)
    finally:
        client.close()
    return int(numsub[0][1]) if numsub else 0


# --- client processes ----------------------------------------------------------------------


def spread_clients(
    stack: Stack,
    gateways: Sequence[Gateway],
    token: str,
    redis_url: str,
    clients: int,
    processes: int,
    extra: Sequence[str],
    max_seconds: float,
    name: str = "clients",
) -> list[tuple[ClientProcess, int, int]]:
    """`clients` WebSocket clients in `processes` processes (bench/wsclients.py), process i on
    gateway i mod len(gateways); each is (process, its client count, its gateway's index)."""
    processes = max(1, min(processes, clients))
    per_process = -(-clients // processes)
    spread = []
    for i in range(processes):
        count = min(per_process, clients - i * per_process)
        if count <= 0:
            break
        gateway = gateways[i % len(gateways)]
        process = stack.clients(
            [
                "--url",
                gateway.ws_url,
                "--token",
                token,
                "--count",
                str(count),
                "--redis",
                redis_url,
                "--max-seconds",
                str(max_seconds),
                *extra,
            ],
            f"{name}-{i}",
        )
        spread.append((process, count, i % len(gateways)))
    return spread


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


# --- a chart -------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]]


@dataclass
class Panel:
    label: str  # the y axis
    series: list[Series]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def svg_chart(
    title: str,
    panels: Sequence[Panel],
    x_label: str,
    spans: Sequence[tuple[float, float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
    width: int = 900,
    panel_height: int = 170,
) -> str:
    """Panels stacked over one time axis, one line per series; `spans` are shaded x ranges and
    `marks` vertical lines, each with a label."""
    left, right, top, gap, bottom = 80, 150, 40, 36, 44
    plot_w = width - left - right
    height = top + len(panels) * (panel_height + gap) - gap + bottom
    xs = [x for p in panels for s in p.series for x, _ in s.points] or [0.0, 1.0]
    x0, x1 = min(*xs, 0.0), max(*xs, 1.0)
    step_x = _nice_step(x1 - x0, 8)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        y_top = top + index * (panel_height + gap)
        y_bottom = y_top + panel_height
        ys = [y for s in panel.series for _, y in s.points] or [0.0, 1.0]
        y_max = max(*ys, 1e-9) * 1.1
        step_y = _nice_step(y_max, 4)
        y_max = math.ceil(y_max / step_y) * step_y

        def sy(y: float, y_top: float = y_top, y_max: float = y_max) -> float:
            return y_top + panel_height - y / y_max * panel_height

        for start, end, label in spans:
            out.append(
                f'<rect x="{sx(start):.1f}" y="{y_top}" width="{max(1.0, sx(end) - sx(start)):.1f}" '
                f'height="{panel_height}" fill="#e8eef8"/>'
            )
            if index == 0:
                out.append(
                    f'<text x="{sx(start) + 3:.1f}" y="{y_top + 12}" fill="#557">{escape(label)}</text>'
                )
        out.append(
            f'<rect x="{left}" y="{y_top}" width="{plot_w}" height="{panel_height}" '
            'fill="none" stroke="#999"/>'
        )
        tick = 0.0
        while tick <= y_max + 1e-9:
            y = sy(tick)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
            tick += step_y
        out.append(
            f'<text x="18" y="{(y_top + y_bottom) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 18 {(y_top + y_bottom) / 2:.1f})">{escape(panel.label)}</text>'
        )
        tick = math.ceil(x0 / step_x) * step_x
        while tick <= x1 + 1e-9:
            x = sx(tick)
            out.append(f'<line x1="{x:.1f}" y1="{y_bottom}" x2="{x:.1f}" y2="{y_bottom + 4}" stroke="#999"/>')
            if index == len(panels) - 1:
                out.append(f'<text x="{x:.1f}" y="{y_bottom + 16}" text-anchor="middle">{_fmt(tick)}</text>')
            tick += step_x
        for x, label in marks:
            out.append(
                f'<line x1="{sx(x):.1f}" y1="{y_top}" x2="{sx(x):.1f}" y2="{y_bottom}" '
                'stroke="#c33" stroke-dasharray="4 3"/>'
            )
            if index == 0:
                out.append(f'<text x="{sx(x) + 3:.1f}" y="{y_top - 4}" fill="#c33">{escape(label)}</text>')
        for n, series in enumerate(panel.series):
            if series.points:
                path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in series.points)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{series.color}" stroke-width="1.6"/>'
                )
            ly = y_top + 14 + n * 16
            out.append(
                f'<line x1="{left + plot_w + 10}" y1="{ly - 4}" x2="{left + plot_w + 28}" y2="{ly - 4}" '
                f'stroke="{series.color}" stroke-width="2"/>'
            )
            out.append(f'<text x="{left + plot_w + 32}" y="{ly}">{escape(series.name)}</text>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def recorded_args(args: argparse.Namespace) -> dict[str, str]:
    """The options of a run as its JSON records them: not `--out`, a path on the machine that ran it."""
    return {k: str(v) for k, v in vars(args).items() if k != "out"}
