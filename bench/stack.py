"""The processes a benchmark runs: Redis, a simulated fleet, a gateway, and the client processes.

Everything listens on and connects to 127.0.0.1 only. Processes are started with the helpers of
`testbed.procs` (the ones the integration tests use) and stopped when the `Stack` closes,
whatever happened. The benchmark process raises its open-files limit first (`measure.raise_fd_limit`)
and the processes it starts inherit it: 1,000 WebSocket clients are 2,000 sockets on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from testbed.procs import (
    BIN,
    ROOT,
    Gateway,
    RedisServer,
    Service,
    SshFleet,
    service_env,
    start_gateway,
    start_ssh_fleet,
    wait_until,
)

from .cli import flags
from .measure import CpuWindow, rss_kib, switches


class Spread(list[tuple["ClientProcess", int, int]]):
    """Client processes as `Stack.spread` started them: (process, its clients, its URL's index)."""

    @property
    def processes(self) -> list[ClientProcess]:
        return [process for process, _, _ in self]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process, _, _ in self]

    def send(self, message: dict[str, Any]) -> None:
        for process, _, _ in self:
            process.send(message)

    def gather(self, event: str, timeout: float) -> list[dict[str, Any] | None]:
        """Every process's next `event`; None from one that did not say it in time."""
        # A `ready` comes once each client connected or failed: one missing counts them all failed.
        answers: list[dict[str, Any] | None] = []
        for process, clients, _ in self:
            try:
                answers.append(process.expect(event, timeout))
            except RuntimeError as exc:
                print(f"note: {exc}")
                failed = {"ready": 0, "failed": clients, "failures": {"no `ready` in time": clients}}
                answers.append({"event": "ready", **failed} if event == "ready" else None)
        return answers


def make_token(tokens_file: Path, name: str = "bench", role: str = "viewer") -> str:
    """A token made the documented way (`fleetdeck token add`), stored hashed in `tokens_file`."""
    argv = [str(BIN / "fleetdeck"), "token", "add", name, "--role", role, "--file", str(tokens_file)]
    return subprocess.check_output(argv, text=True, stderr=subprocess.PIPE).split()[0]


class Stack(contextlib.ExitStack):
    """The processes of one benchmark run; each is stopped when the `with` block ends, even if
    starting a later one failed."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir

    def redis(self) -> RedisServer:
        redis = RedisServer(self.workdir)
        self.callback(redis.stop)
        redis.start()
        return redis

    def service(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        service = Service(name, argv, env, self.workdir)
        self.callback(service.stop)
        return service

    def gateway(self, redis_url: str, tokens_file: Path, name: str = "gateway", **extra: str) -> Gateway:
        """`fleetdeck-gateway` on a free loopback port, once it answers /readyz."""
        extra = {"FLEETDECK_HOST": "127.0.0.1", **extra}
        gateway = start_gateway(
            redis_url, self.workdir, tokens_file, name, ready=True, port=None, within=60, **extra
        )
        self.callback(gateway.stop)
        return gateway

    def simulated_fleet(self, redis_url: str, hosts: int, **extra: str) -> Service:
        """`fleetdeck-agent --simulate N`: N hosts publishing at 1 Hz from one process."""
        health = str(self.workdir / f"agent-{hosts}.health")
        env = service_env(redis_url, FLEETDECK_HEALTH_FILE=health, FLEETDECK_LOG_LEVEL="WARNING", **extra)
        argv = [str(BIN / "fleetdeck-agent"), "--simulate", str(hosts)]
        return self.service(f"agent-sim-{hosts}", argv, env)

    def gateway_with_fleet(
        self, hosts: int, **gateway_env: str
    ) -> tuple[RedisServer, Path, str, Gateway, Service]:
        """A Redis, the token file and a viewer's token in it, one gateway and `hosts` simulated hosts
        (`fleetdeck-agent --simulate`), once the gateway lists them all."""
        redis = self.redis()
        tokens = self.workdir / "tokens.txt"
        token = make_token(tokens)
        gateway = self.gateway(redis.url, tokens, **gateway_env)
        agent = self.simulated_fleet(redis.url, hosts)
        # 10,000 hosts take the agent a while to bring online on a busy machine
        wait_for_hosts(gateway, token, hosts, timeout=max(60.0, hosts * 0.03))
        return redis, tokens, token, gateway, agent

    def ssh_fleet(self, count: int, first: str = "127.0.0.2") -> SshFleet:
        """`count` loopback SSH hosts from `first` on (testbed/sshfleet.py), once they listen."""
        fleet = start_ssh_fleet(self.workdir, self.workdir, count, first)
        self.callback(fleet.service.stop)
        return fleet

    def spread(
        self, urls: Sequence[str], clients: int, processes: int, name: str = "clients", /, **options: object
    ) -> Spread:
        """`clients` WebSocket clients in `processes` processes (bench/wsclients/), process i on
        urls[i mod len(urls)], each with `options` as flags; (process, its clients, its URL's index)."""
        processes = min(max(1, processes), clients)
        spread = Spread()
        for i in range(processes):
            count = clients // processes + (i < clients % processes)
            process = ClientProcess(
                flags(url=urls[i % len(urls)], count=count, **options), self.workdir, f"{name}-{i}"
            )
            self.callback(process.stop)
            spread.append((process, count, i % len(urls)))
        return spread


def wait_for_hosts(gateway: Gateway, token: str, count: int, timeout: float = 60) -> None:
    """Until the gateway lists `count` online hosts (GET /api/hosts)."""

    def online() -> bool:
        answer = httpx.get(
            gateway.url + "/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        return sum(1 for row in answer["hosts"] if row.get("online")) >= count

    wait_until(online, timeout, interval=0.5, what=f"{count} hosts online")


def open_window(
    processes: Sequence[ClientProcess], seconds: float, grace: float, delay: float = 1.0
) -> tuple[float, float]:
    """Tell every process the window to measure (from `delay` s on); wait until it opens."""
    start = time.time() + delay
    for process in processes:
        process.send({"cmd": "window", "start": start, "end": start + seconds, "grace": grace})
    time.sleep(max(0.0, start - time.time()))
    return start, start + seconds


def follow_window(
    processes: Sequence[ClientProcess],
    pid: int,
    ours: Sequence[int],
    args: argparse.Namespace,
    grace: float,
    stem: str,
) -> tuple[dict[int, float], dict[str, float], list[int], list[dict[str, Any]]]:
    """The clients' window (`open_window`) for --duration s: the CPU of each of `ours` and the
    machine's over it (`CpuWindow`), the server `pid`'s RSS read every second (profiled into
    --profile/STEM.*, when asked), its context switches (`server_slept`, `server_preempted`) and the
    clients' sleeps (`clients_slept`), and the clients' results once `grace` s have passed."""
    _, end = open_window(processes, args.duration, grace)
    with sampling(pid, args.duration, args.profile / stem if args.profile else None):
        pids = [pid, *(c.pid for c in processes)]
        window, before, rss = CpuWindow(ours), [switches(p) for p in pids], []
        while time.time() < end:
            rss.append(rss_kib(pid))
            time.sleep(min(1.0, max(0.0, end - time.time())))
        cpu, machine = window.close()
        grown = [(n[0] - b[0], n[1] - b[1]) for n, b in zip(map(switches, pids), before, strict=True)]
        machine |= {"server_slept": grown[0][0], "server_preempted": grown[0][1]}
        machine["clients_slept"] = sum(slept for slept, _ in grown[1:])
        results = [p.expect("result", 60) for p in processes]
    return cpu, machine, rss, results


@contextlib.contextmanager
def sampling(pid: int, seconds: float, stem: Path | None) -> Iterator[None]:
    """py-spy (not a dependency: `.venv/bin/pip install py-spy`) records `pid` as a flame graph, STEM.svg."""
    binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if stem is not None and binary is None:
        print("note: py-spy not found; no profile (install it into .venv to profile)")
    if stem is None or binary is None:
        yield
        return
    argv = [binary, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "flamegraph"]
    spy = subprocess.Popen(
        [*argv, "-o", f"{stem}.svg", "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    yield
    spy.wait(60)


class ClientProcess:
    """One `python -m bench.wsclients` process: many WebSocket clients, driven over its stdin and
    stdout with one JSON object a line."""

    def __init__(self, args: list[str], log_dir: Path, name: str) -> None:
        self.name = name
        self._log = (log_dir / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.wsclients", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next message from the process, which must be `event`; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"{self.name} exited (code {self.proc.wait()}); see its log")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == "error":
                raise RuntimeError(f"{self.name}: {message.get('error')}")
            if message.get("event") == event:
                return message
        raise RuntimeError(f"{self.name}: no {event!r} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send({"cmd": "close"})
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
