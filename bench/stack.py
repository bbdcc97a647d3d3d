"""The processes a benchmark runs: Redis, a simulated fleet, gateways, and the client processes,
and the window in which the clients measure them.

Everything listens on and connects to 127.0.0.1 only. Processes are started with the helpers of
`testbed.procs` (the ones the integration tests use) and stopped when the `Stack` closes,
whatever happened. The benchmark process raises its open-files limit first (`measure.raise_fd_limit`)
and the processes it starts inherit it: 1,000 WebSocket clients are 2,000 sockets on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from testbed.procs import (
    BIN,
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
from .harness import pin
from .measure import CpuWindow, rss_kib, switches
from .wsclients.driver import ClientProcess, Spread


def make_token(tokens_file: Path, name: str = "bench", role: str = "viewer") -> str:
    """A token made the documented way (`fleetdeck token add`), stored hashed in `tokens_file`."""
    argv = [str(BIN / "fleetdeck"), "token", "add", name, "--role", role, "--file", str(tokens_file)]
    return subprocess.check_output(argv, text=True, stderr=subprocess.PIPE).split()[0]


class Stack(contextlib.ExitStack):
    """The processes of one benchmark run; each is stopped when the `with` block ends, even if
    starting a later one failed. With the run's `args`: its servers (`pids`) pinned to one core, the
    `feed` (Redis, the fleet) and the clients to the other (`harness.pin`); a stack given a `feed`
    stack serves that one's Redis and tokens (a server measured in turn on the same feed)."""

    def __init__(
        self, workdir: Path, args: argparse.Namespace | None = None, feed: Stack | None = None
    ) -> None:
        super().__init__()
        self.workdir, self.args = workdir, args or argparse.Namespace()
        self.tokens: Path = feed.tokens if feed else workdir / "tokens.txt"
        self.gateways: list[Gateway] = []
        self.pids: list[int] = []  # the servers measured
        self.feed: list[int] = feed.feed if feed else []  # Redis and the simulated fleet
        self.redis_url: str = feed.redis_url if feed else ""
        self.token: str = feed.token if feed else ""
        self.clients = Spread()

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

    def ssh_fleet(self, count: int, first: str = "127.0.0.2") -> SshFleet:
        """`count` loopback SSH hosts from `first` on (testbed/sshfleet.py), once they listen."""
        fleet = start_ssh_fleet(self.workdir, self.workdir, count, first)
        self.callback(fleet.service.stop)
        return fleet

    def start(self, gateways: int = 1, fleet: bool = True, pinned: bool = True, **env: str) -> Stack:
        """Redis, a viewer's token, the gateways (with `env`), and unless told not to --hosts
        simulated hosts (`start_fleet`); `pinned`: as `harness.pin` says."""
        self.store, self.token = self.redis(), make_token(self.tokens)
        assert self.store.service is not None
        self.redis_url, self.feed = self.store.url, [self.store.service.pid]
        names = [f"gateway-{i}" for i in range(gateways)] if gateways > 1 else ["gateway"] * gateways
        self.gateways = [self.gateway(self.redis_url, self.tokens, name, **env) for name in names]
        self.pids = [g.service.pid for g in self.gateways]
        if pinned:
            pin(self.args, self.pids, self.feed)
        if fleet:
            self.start_fleet(pinned)
        return self

    def start_fleet(self, pinned: bool = True, **env: str) -> None:
        """The simulated fleet, once every gateway lists it."""
        self.agent = self.simulated_fleet(self.redis_url, self.args.hosts, **env)
        self.feed.append(self.agent.pid)
        if pinned:
            pin(self.args, [], [self.agent.pid])
        for gateway in self.gateways:  # 10,000 hosts take the agent a while on a busy machine
            wait_for_hosts(gateway, self.token, self.args.hosts, timeout=max(60.0, self.args.hosts * 0.03))

    def follow(
        self,
        count: int,
        processes: int,
        name: str = "clients",
        /,
        urls: Sequence[str] = (),
        **options: object,
    ) -> Spread:
        """`count` WebSocket clients in `processes` processes (bench/wsclients/), process i on the
        i-th of `urls` (by default the gateways', round again), following `fleet` (--light: only the
        probes parse whole frames, so the clients keep up on a machine they share) timed against
        Redis, unless `options` (flags of theirs) say otherwise; pinned with the feed."""
        urls = urls or [g.ws_url for g in self.gateways]
        options = {
            "mode": "fleet",
            "light": True,
            "batch": not getattr(self.args, "no_batch", False),
        } | options
        options = {"token": self.token, "redis": self.redis_url, **options}
        spread, processes = Spread(), min(max(1, processes), count)
        for i in range(processes):
            clients = count // processes + (i < count % processes)
            argv = flags(url=urls[i % len(urls)], count=clients, **options)
            process = ClientProcess(argv, self.workdir, f"{name}-{i}")
            self.callback(process.stop)
            spread.append((process, clients, i % len(urls)))
        pin(self.args, [], spread.pids)
        self.clients += spread
        return spread

    def window(self, seconds: float = 0, grace: float = 0, delay: float = 1.0) -> tuple[CpuWindow, float]:
        """A CPU window over every process, once the clients' window of `seconds` (0: none) opens
        `delay` s from now (their results come `grace` s after its end); and that end."""
        start = time.time() + delay
        if seconds:
            self.clients.send({"cmd": "window", "start": start, "end": start + seconds, "grace": grace})
            time.sleep(max(0.0, start - time.time()))
        return CpuWindow(
            [*self.pids, *self.feed, *self.clients.pids]
        ), start + seconds if seconds else math.inf

    def follow_window(
        self, grace: float, stem: str = ""
    ) -> tuple[dict[int, float], dict[str, float], dict[int, list[int]], list[dict[str, Any] | None]]:
        """The clients' window of --duration s (`window`): each process's CPU and the machine's, each
        server's RSS every second (the first profiled into --profile/STEM.svg, when asked), the
        first's context switches (`server_slept`, `server_preempted`) and the clients' sleeps
        (`clients_slept`), and the clients' results once `grace` s have passed."""
        window, end = self.window(self.args.duration, grace)
        profile, pids = getattr(self.args, "profile", None), [self.pids[0], *self.clients.pids]
        with sampling(pids[0], self.args.duration, profile / stem if profile else None):
            before, rss = [switches(p) for p in pids], {p: list[int]() for p in self.pids}
            while time.time() < end:
                for pid, readings in rss.items():
                    readings.append(rss_kib(pid))
                time.sleep(min(1.0, max(0.0, end - time.time())))
            cpu, machine = window.close()
            grown = [(n[0] - b[0], n[1] - b[1]) for n, b in zip(map(switches, pids), before, strict=True)]
            machine |= {"server_slept": grown[0][0], "server_preempted": grown[0][1]}
            machine["clients_slept"] = sum(slept for slept, _ in grown[1:])
            results = self.clients.gather("result", 120)
        return cpu, machine, rss, results

    def costs(self, cpu: Mapping[int, float], listed: bool = False) -> dict[str, Any]:
        """The CPU of each process over a window, % of a core (`listed`: a list, one a gateway)."""
        gateways = [cpu[p] for p in self.pids]
        return {
            "gateway_cpu_pct": gateways if listed else gateways[0],
            "agent_cpu_pct": cpu[self.agent.pid],
            "redis_cpu_pct": cpu[self.feed[0]],
            "clients_cpu_pct": sum(cpu[p] for p in self.clients.pids),
        }


def wait_for_hosts(gateway: Gateway, token: str, count: int, timeout: float = 60) -> None:
    """Until the gateway lists `count` online hosts (GET /api/hosts)."""

    def online() -> bool:
        answer = httpx.get(
            gateway.url + "/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        return sum(1 for row in answer["hosts"] if row.get("online")) >= count

    wait_until(online, timeout, interval=0.5, what=f"{count} hosts online")


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
