"""Benchmark: terminals through the whole path (WebSocket client -> gateway -> Redis -> worker ->
OpenSSH sshd PTY -> back) against asyncssh straight to the same sshd with a PTY, in one run:
keystroke echo latency, `cat` of a big file, RSS under a slow reader, and 100 idle terminals.

What it measures and how: docs/benchmarks.md. Its summary: bench/terminal.md
(raw figures in bench/results/).

    .venv/bin/python -m bench.terminal
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from testbed.opensshd import client_key, start_sshd
from testbed.procs import Gateway, Service, free_port, start_worker, wait_until

from . import term_clients as tc
from .harness import Result, output_options, publish, record
from .measure import Context, CpuWindow, percentile, rss_kib, rss_median
from .stack import Stack, make_token

NAME = "terminal"
HOST = "127.0.4.10"
TARGET_MS = 5.0  # p99 echo through the path at most the direct p99 plus this
WINDOW_MIB = 1.0  # the worker's output in flight per terminal (docs/terminal.md)
OPEN_AT_ONCE = 8  # under sshd's MaxStartups (10 unauthenticated connections)


class Parts:
    """The run's processes: the sshd, a worker and a gateway on one Redis, an operator's token."""

    def __init__(self, stack: Stack, workdir: Path, terminals: int) -> None:
        redis = stack.redis()
        tokens = workdir / "tokens.txt"
        self.token = make_token(tokens, "bench-operator", "operator")
        self.key, public = client_key(workdir / "client")
        home = workdir / "home"
        home.mkdir()
        (home / ".profile").write_text(f"PS1='{tc.PROMPT}'; export PS1\n")
        self.port = free_port(HOST)
        sshd = start_sshd(
            workdir / "sshd", HOST, public, workdir / "commands.jsonl", self.port, record=False, home=home
        )
        stack.callback(sshd.stop)
        self.known_hosts = workdir / "known_hosts"
        self.known_hosts.write_text(sshd.known_hosts_line)
        env = {
            "FLEETDECK_SSH_KEY": str(self.key),
            "FLEETDECK_KNOWN_HOSTS": str(self.known_hosts),
            "FLEETDECK_SSH_PORT": str(self.port),
            "FLEETDECK_SSH_USER": "root",
            "FLEETDECK_ALLOWED_TARGETS": "127.0.0.0/8",
            "FLEETDECK_LOG_LEVEL": "WARNING",
        }
        self.worker: Service = start_worker(redis.url, workdir, "bench", **env)
        stack.callback(self.worker.stop)
        self.gateway: Gateway = stack.gateway(
            redis.url,
            tokens,
            FLEETDECK_TERM_MAX_PER_USER=str(terminals + 10),
            FLEETDECK_ALLOWED_TARGETS="127.0.0.0/8",
            FLEETDECK_LOG_LEVEL="WARNING",
        )
        headers = {"Authorization": f"Bearer {self.token}"}
        wait_until(
            lambda: bool(
                httpx.get(self.gateway.url + "/api/workers", headers=headers, timeout=5).json()["alive"]
            ),
            60,
            0.2,
            "a worker",
        )
        self.pids = {"gateway": self.gateway.service.pid, "worker": self.worker.pid}

    def rss(self) -> dict[str, int]:
        return {name: rss_kib(pid) for name, pid in self.pids.items()}


def big_file(path: Path, mib: int) -> Path:
    """`mib` MiB of printable lines (what `cat` shows through the PTY unchanged but for CR LF)."""
    line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_" * 2)[:127] + b"\n"
    with path.open("wb") as out:
        for _ in range(mib * 1024 * 1024 // len(line)):
            out.write(line)
    return path


def quantiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99), "max_ms": max(values)}


async def echo_and_cat(parts: Parts, args: argparse.Namespace, file: Path) -> dict[str, Any]:
    """Echo latency and `cat` throughput, direct first, then through the path."""
    conn, term = await tc.direct(HOST, parts.port, parts.key, parts.known_hosts)
    direct_echo = await tc.echo_latencies(term, args.keystrokes)
    direct_cat = await tc.cat_seconds(term, file)
    conn.close()
    socket = await tc.Socket.open(parts.gateway.ws_url, parts.token)
    term = await socket.terminal(HOST)
    path_echo = await tc.echo_latencies(term, args.keystrokes)
    path_cat = await tc.cat_seconds(term, file)
    await socket.close_term(term)
    await socket.close()
    size = file.stat().st_size
    return {
        "echo": {
            "direct": quantiles(direct_echo),
            "path": quantiles(path_echo),
            "keystrokes": args.keystrokes,
        },
        "cat": {
            name: {"seconds": seconds, "chars": chars, "mb_per_s": size / seconds / 1e6}
            for name, (seconds, chars) in (("direct", direct_cat), ("path", path_cat))
        }
        | {"file_bytes": size},
    }


async def slow_reader(parts: Parts, args: argparse.Namespace, file: Path) -> dict[str, Any]:
    """Gateway and worker RSS while one client reads a `cat` at --slow-rate characters a second."""
    socket = await tc.Socket.open(parts.gateway.ws_url, parts.token)
    term = await socket.terminal(HOST)
    before = {name: rss_median(pid, 2) for name, pid in parts.pids.items()}
    socket.pace(args.slow_rate)
    start_chars = term.received
    await term.send(f"cat {file}\r")
    trace: list[dict[str, int]] = []  # RSS every 0.5 s: flat, or climbing?
    deadline = time.monotonic() + args.slow_seconds
    while time.monotonic() < deadline:
        trace.append(parts.rss())
        await asyncio.sleep(0.5)
    peak = {name: max(row[name] for row in trace) for name in before}
    half = {name: max(row[name] for row in trace[: len(trace) // 2]) for name in before}
    read = term.received - start_chars
    socket.pace(0)
    await term.send("\x03")
    await socket.close_term(term)
    await socket.close()
    return {
        "rate": args.slow_rate,
        "seconds": args.slow_seconds,
        "read_chars": read,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "growth_kib": {name: peak[name] - before[name] for name in peak},
        "second_half_growth_kib": {name: peak[name] - half[name] for name in peak},
        "rss_trace_kib": trace,
    }


async def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    window = CpuWindow(pids.values())
    await asyncio.sleep(seconds)
    cpu, _machine = window.close()
    return {name: cpu[pid] for name, pid in pids.items()}


async def many(parts: Parts, args: argparse.Namespace) -> dict[str, Any]:
    """--terminals open at once on 10 sockets: RSS per terminal and CPU while idle, against none."""
    sockets = [await tc.Socket.open(parts.gateway.ws_url, parts.token) for _ in range(10)]
    await asyncio.sleep(1)  # the sockets' hello and first fleet frames
    before = {name: rss_median(pid, 3) for name, pid in parts.pids.items()}
    cpu_none = await idle_cpu(parts.pids, args.idle_seconds)
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def one(i: int) -> tuple[tc.Socket, tc.Terminal]:
        async with gate:
            socket = sockets[i % len(sockets)]
            return socket, await socket.terminal(HOST)

    start = time.perf_counter()
    terms = await asyncio.gather(*(one(i) for i in range(args.terminals)))
    opened_s = time.perf_counter() - start
    await asyncio.sleep(1)
    after = {name: rss_median(pid, 3) for name, pid in parts.pids.items()}
    cpu_open = await idle_cpu(parts.pids, args.idle_seconds)
    await asyncio.gather(*(socket.close_term(term) for socket, term in terms))
    for socket in sockets:
        await socket.close()
    return {
        "terminals": args.terminals,
        "open_seconds": opened_s,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_terminal": {name: (after[name] - before[name]) / args.terminals for name in after},
        "idle_cpu_pct_none": cpu_none,
        "idle_cpu_pct_open": cpu_open,
        "idle_seconds": args.idle_seconds,
    }


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with Stack(workdir) as stack:
        parts = Parts(stack, workdir, args.terminals)
        file = big_file(workdir / "big.txt", args.mib)
        load = [os.getloadavg()[0]]

        async def everything() -> dict[str, Any]:
            figures = await echo_and_cat(parts, args, file)
            load.append(os.getloadavg()[0])
            figures["slow"] = await slow_reader(parts, args, file)
            load.append(os.getloadavg()[0])
            figures["many"] = await many(parts, args)
            load.append(os.getloadavg()[0])
            return figures

        figures = asyncio.run(everything())
        return figures | {"load_1min": load, "load_1min_median": statistics.median(load)}


HEAD = """A shell on a stock OpenSSH sshd on {host} (a PTY, bash), through the whole path (WebSocket
client -> gateway /ws -> Redis -> exec worker -> sshd) against asyncssh straight to the same sshd
with a PTY, in one run; one gateway, one worker, one Redis; {context}. 1-minute load average during
the run: {loads} (2 CPUs shared with other engineers' test runs: these are loaded-machine figures)."""


def render(raw: dict[str, Any], ctx: Context) -> str:
    echo, cat, slow, many_ = raw["echo"], raw["cat"], raw["slow"], raw["many"]
    limit = echo["direct"]["p99_ms"] + TARGET_MS
    met = echo["path"]["p99_ms"] <= limit
    over = echo["path"]["p99_ms"] - limit
    window_kib = WINDOW_MIB * 1024
    slow_ok = all(kib <= 2 * window_kib for kib in slow["growth_kib"].values())
    lines = [
        HEAD.format(host=HOST, context=ctx.sentence(), loads=", ".join(f"{v:.1f}" for v in raw["load_1min"])),
        "",
        "| figure | through the path | direct (asyncssh) | target | |",
        "| --- | --- | --- | --- | --- |",
        f"| keystroke echo p50 ({echo['keystrokes']:,} keys) | {echo['path']['p50_ms']:.1f} ms "
        f"| {echo['direct']['p50_ms']:.1f} ms | | |",
        f"| keystroke echo p99 | {echo['path']['p99_ms']:.1f} ms | {echo['direct']['p99_ms']:.1f} ms "
        f"| <= direct + {TARGET_MS:g} ms ({limit:.1f} ms) | "
        + ("met" if met else f"**missed** by {over:.1f} ms")
        + " |",
        f"| keystroke echo max | {echo['path']['max_ms']:.1f} ms | {echo['direct']['max_ms']:.1f} ms | | |",
        f"| `cat` of {cat['file_bytes'] / 2**20:.0f} MiB | {cat['path']['seconds']:.1f} s, "
        f"{cat['path']['mb_per_s']:.1f} MB/s | {cat['direct']['seconds']:.1f} s, "
        f"{cat['direct']['mb_per_s']:.1f} MB/s "
        f"| | path {cat['path']['mb_per_s'] / cat['direct']['mb_per_s']:.2f}x direct |",
        "",
        f"A client reading a `cat` at {slow['rate'] / 1000:.0f} KB/s for {slow['seconds']:g} s "
        f"(it read {slow['read_chars'] / 1e6:.1f} MB): peak RSS growth gateway "
        f"{slow['growth_kib']['gateway'] / 1024:.1f} MiB, "
        f"worker {slow['growth_kib']['worker'] / 1024:.1f} MiB (from "
        f"{slow['rss_before_kib']['gateway'] / 1024:.0f} and "
        f"{slow['rss_before_kib']['worker'] / 1024:.0f} MiB); "
        "in the window's second half it grew by a further "
        f"{slow['second_half_growth_kib']['gateway'] / 1024:.1f} "
        f"and {slow['second_half_growth_kib']['worker'] / 1024:.1f} MiB. "
        f"The flow-control window is {WINDOW_MIB:g} MiB in flight per terminal; "
        "peak growth within twice that: " + ("met." if slow_ok else "**missed**."),
        "",
        f"{many_['terminals']} terminals open at once on one gateway and one worker (10 sockets; opened in "
        f"{many_['open_seconds']:.1f} s, {OPEN_AT_ONCE} at a time): RSS per terminal gateway "
        f"{many_['kib_per_terminal']['gateway']:.0f} KiB, "
        f"worker {many_['kib_per_terminal']['worker']:.0f} KiB; CPU while idle over "
        f"{many_['idle_seconds']:g} s: gateway {many_['idle_cpu_pct_open']['gateway']:.1f}%, "
        f"worker {many_['idle_cpu_pct_open']['worker']:.1f}% of a core (with no terminal open: "
        f"{many_['idle_cpu_pct_none']['gateway']:.1f}% and {many_['idle_cpu_pct_none']['worker']:.1f}%).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keystrokes", type=int, default=1000, help="keystrokes timed, each side")
    parser.add_argument("--mib", type=int, default=50, help="size of the file shown with `cat`, MiB")
    parser.add_argument(
        "--slow-rate", type=float, default=100_000, help="the slow client's characters a second"
    )
    parser.add_argument("--slow-seconds", type=float, default=20, help="how long the slow client reads")
    parser.add_argument("--terminals", type=int, default=100, help="terminals open at once")
    parser.add_argument("--idle-seconds", type=float, default=10, help="the idle CPU window")
    output_options(parser)
    args = parser.parse_args()
    ctx = Context.now()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
        raw = measure(args, Path(tmp))
    ctx = ctx.finished()
    summary = render(raw, ctx)
    result = Result(NAME, "Terminals: echo latency, throughput, cost per terminal", summary, {})
    result.data = record(ctx, args, None, raw, ())
    publish(args, result)


if __name__ == "__main__":
    main()
