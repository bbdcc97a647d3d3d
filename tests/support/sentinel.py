"""A Redis master, a replica and three sentinels on loopback ports: a broker that fails over."""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Iterator
from pathlib import Path

import redis

from testbed.procs import Service, free_port, wait_until

SERVICE = "fleetdeck"
# What a sentinel logs on the way through a failover (and when one is given up).
FAILOVER_EVENTS = (
    "+sdown master",
    "+odown",
    "+try-failover",
    "+elected-leader",
    "+selected-slave",
    "+promoted-slave",
    "+switch-master",
    "-failover-abort",
)


class SentinelSet:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, Service] = {}
        self.sentinels: list[Service] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _server(self, port: int, *extra: str) -> Service:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        folder = self.workdir / f"redis-{port}"
        folder.mkdir(exist_ok=True)
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--repl-diskless-sync-delay", "0"]  # a replica in sync at once, not after 5 s
        service = Service(f"redis-{port}", [*argv, "--dir", str(folder), *extra], {}, self.workdir)
        wait_until(lambda: _ping(port), 10, what=f"redis on {port}")
        return service

    def start(self) -> None:
        self.servers[self.master_port] = self._server(self.master_port)
        self.servers[self.replica_port] = self._server(
            self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port)
        )
        wait_until(lambda: _in_sync(self.replica_port), 20, what="the replica in sync with the master")
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        for port in self.sentinel_ports:
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(Service(f"sentinel-{port}", [binary, str(config)], {}, self.workdir))
        for port in self.sentinel_ports:
            wait_until(functools.partial(_knows_replica, port), 20, what=f"sentinel {port} sees the replica")

    def master(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
            assert isinstance(address, tuple)
            return int(address[1])
        finally:
            client.close()

    def kill_master(self) -> int:
        port = self.master()
        self.servers[port].kill()
        return port

    def failover_log(self) -> str:
        """The sentinels' failover events so far, oldest first (each line starts `PID:X DATE TIME`)."""
        lines = [
            line
            for sentinel in self.sentinels
            for line in sentinel.log().splitlines()
            if any(event in line for event in FAILOVER_EVENTS)
        ]
        return "\n".join(sorted(lines, key=lambda line: line.partition(" ")[2]))

    @contextlib.contextmanager
    def explained(self) -> Iterator[None]:
        """A failure inside says how far the sentinels got: a slow failover, or a slow client."""
        try:
            yield
        except Exception as exc:
            exc.add_note(f"the sentinels' failover events:\n{self.failover_log() or '(none)'}")
            raise

    def stop(self) -> None:
        for service in [*self.sentinels, *self.servers.values()]:
            service.stop()


def _ping(port: int) -> bool:
    client = redis.Redis(port=port)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _in_sync(port: int) -> bool:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def _knows_replica(port: int) -> bool:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        replicas = client.sentinel_slaves(SERVICE)
        others = client.sentinel_sentinels(SERVICE)
        return isinstance(replicas, list) and bool(replicas) and isinstance(others, list) and len(others) >= 2
    finally:
        client.close()
