"""A Redis Cluster of three masters on loopback ports, made as `redis-cli --cluster create` makes one;
a master can be killed and started again, and a slot moved from one master to another."""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis

from testbed.procs import Service, wait_until

BUS_OFFSET = 10_000  # a node's cluster bus listens on its port plus this
NODE_TIMEOUT_MS = 2_000
SLOTS = 16_384


def server_version() -> tuple[int, ...] | None:
    """The installed redis-server's version (7, 0, 15), or None if there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    found = re.search(
        r"v=(\d+)\.(\d+)\.(\d+)", subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    )
    return tuple(int(part) for part in found.groups()) if found else None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here (sharded pub/sub needs Redis 7), or None if it can."""
    version = server_version()
    if version is None:
        return "redis-server is not installed"
    if version < (7,):
        return f"sharded pub/sub needs redis-server >= 7; this one is {'.'.join(map(str, version))}"
    if shutil.which("redis-cli") is None:
        return "redis-cli is not installed (it creates the cluster)"
    return None


def _free(port: int) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` loopback ports, each free with its bus port (port + 10,000) free too."""
    ports: list[int] = []
    for _attempt in range(500):
        # Below the ephemeral range free_port() draws from, and low enough for a bus port too.
        port = random.randrange(20_000, 30_000)
        if port not in ports and _free(port) and _free(port + BUS_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise OSError(f"found only {len(ports)} of {count} free port pairs for a cluster")


class RedisCluster:
    """Masters on 127.0.0.1 with every slot covered, no replicas, each node in its own directory."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.workdir = workdir
        self.ports = cluster_ports(masters)
        self.nodes: dict[int, Service] = {}
        self._starts = 0

    @property
    def url(self) -> str:
        """A URL of one node: a cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @staticmethod
    def command(port: int, *args: object) -> Any:
        """One command to the node on `port`, on a connection of its own."""
        with redis.Redis(port=port, decode_responses=True, socket_timeout=5) as client:
            return client.execute_command(*args)

    def start(self) -> None:
        """Start every master, join them with `redis-cli --cluster create`, wait for `cluster_state:ok`."""
        for port in self.ports:
            self.start_node(port, joined=False)
        argv = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        subprocess.run([*argv, "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True)
        self.wait_ok()

    def start_node(self, port: int, joined: bool = True) -> None:
        """Start (or start again, from its nodes.conf) the master on `port`."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        directory = self.workdir / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        self._starts += 1
        argv = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--save", "", "--appendonly", "no", "--dir", str(directory),
        ]  # fmt: skip
        self.nodes[port] = Service(f"redis-cluster-{port}-{self._starts}", argv, {}, directory)
        wait_until(lambda: self.command(port, "PING"), 10, what=f"cluster node {port} to answer")
        if joined:
            self.wait_ok()

    def kill_node(self, port: int) -> None:
        """SIGKILL the master on `port` (its slots stay its own: there are no replicas)."""
        self.nodes[port].kill()

    def stop(self) -> None:
        for service in self.nodes.values():
            service.stop()

    def state(self, port: int) -> str:
        info = str(self.command(port, "CLUSTER", "INFO"))
        found = re.search(r"cluster_state:(\w+)", info)
        return found.group(1) if found else ""

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node says the cluster is ok (about 2 s after a node starts)."""
        running = [port for port, service in self.nodes.items() if service.alive()]
        wait_until(lambda: all(self.state(p) == "ok" for p in running), timeout, what="cluster_state:ok")

    def node_id(self, port: int) -> str:
        return str(self.command(port, "CLUSTER", "MYID"))

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot`, as the first running node sees it."""
        port = next(p for p, service in self.nodes.items() if service.alive())
        for first, last, master, *_replicas in self.command(port, "CLUSTER", "SLOTS"):
            if int(first) <= slot <= int(last):
                return int(master[1])
        raise LookupError(f"slot {slot} is not served")

    def move_slot(self, slot: int, to: int) -> None:
        """Move `slot` (and any keys in it) to the master on port `to`, as `redis-cli --cluster
        reshard` does: importing, migrating, the keys, then the new owner told to every node."""
        source = self.owner(slot)
        if source == to:
            return
        source_id, target_id = self.node_id(source), self.node_id(to)
        self.command(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self.command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := self.command(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            self.command(source, "MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", *keys)
        for port in self.ports:
            if self.nodes[port].alive():
                self.command(port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        wait_until(lambda: self.owner(slot) == to, 10, what=f"slot {slot} served by {to}")
