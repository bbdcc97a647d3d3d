"""A Redis master, a replica and three sentinels on loopback ports, under the users `fleetdeck
redis-users` writes for a `redis+sentinel://` URL: a broker that fails over, least privilege."""

from __future__ import annotations

import contextlib
import functools
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from fleetdeck.redis_users import REPLICATION_FILE, SENTINEL_AUTH_FILE, write_users
from fleetdeck_common.acl import Service as ServiceName
from fleetdeck_common.broker.sentinel import parse_sentinel_url
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
# A test-only user beside the generated ones, to read the servers' ACL log and clients.
ADMIN_USER = "test-admin"


class SentinelSet:
    """Servers started with the generated `users.acl` and `replication.conf`, sentinels with
    `sentinel-auth.conf` appended to their files; `urls` are the services' own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, Service] = {}
        self.sentinels: list[Service] = []
        self.users = workdir / "users"
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.urls: dict[ServiceName, str] = write_users(self.users, f"redis+sentinel://{hosts}/{SERVICE}/0")
        self.sentinel_password = parse_sentinel_url(self.urls["agent"]).sentinel_password
        self.admin_password = uuid.uuid4().hex
        self.aclfile = workdir / "with-admin.acl"
        admin_rule = f"user {ADMIN_USER} on >{self.admin_password} ~* &* +@all\n"
        self.aclfile.write_text((self.users / "users.acl").read_text() + admin_rule)

    def admin(self, port: int) -> redis.Redis:
        """A client of the server on `port` as the test's own administrator."""
        return redis.Redis(
            port=port, username=ADMIN_USER, password=self.admin_password, decode_responses=True
        )

    def sentinel(self, port: int) -> redis.Redis:
        """A client of the sentinel on `port`, with Sentinel's own password."""
        return redis.Redis(port=port, password=self.sentinel_password, decode_responses=True)

    def _server(self, port: int, *extra: str) -> Service:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        folder = self.workdir / f"redis-{port}"
        folder.mkdir(exist_ok=True)
        # Its own copy: Sentinel's CONFIG REWRITE rewrites a server's config file.
        config = folder / "redis.conf"
        config.write_text((self.users / REPLICATION_FILE).read_text())
        argv = [binary, str(config), "--aclfile", str(self.aclfile)]
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--repl-diskless-sync-delay", "0"]  # a replica in sync at once, not after 5 s
        service = Service(f"redis-{port}", [*argv, "--dir", str(folder), *extra], {}, self.workdir)
        wait_until(lambda: self._ping(port), 10, what=f"redis on {port}")
        return service

    def start(self) -> None:
        self.servers[self.master_port] = self._server(self.master_port)
        self.servers[self.replica_port] = self._server(
            self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port)
        )
        wait_until(self._in_sync, 20, what="the replica in sync with the master (as fleetdeck-replica)")
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        auth = (self.users / SENTINEL_AUTH_FILE).read_text()
        for port in self.sentinel_ports:
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n" + auth
            )
            self.sentinels.append(Service(f"sentinel-{port}", [binary, str(config)], {}, self.workdir))
        for port in self.sentinel_ports:
            wait_until(
                functools.partial(self._knows_replica, port), 20, what=f"sentinel {port} sees the replica"
            )

    def master(self) -> int:
        with self.sentinel(self.sentinel_ports[0]) as client:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
            assert isinstance(address, tuple)
            return int(address[1])

    def kill_master(self) -> int:
        port = self.master()
        self.servers[port].kill()
        return port

    def refused(self, port: int) -> list[dict[str, Any]]:
        """What the server on `port` refused to any user since it started (its ACL log)."""
        with self.admin(port) as client:
            entries: list[dict[str, Any]] = client.acl_log()
            return entries

    def users_connected(self, port: int) -> set[str]:
        """The users of the clients connected to the server on `port` (the test's own left out)."""
        with self.admin(port) as client:
            return {c["user"] for c in client.client_list()} - {ADMIN_USER}

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

    def _ping(self, port: int) -> bool:
        with self.admin(port) as client:
            return bool(client.ping())

    def _in_sync(self) -> bool:
        with self.admin(self.replica_port) as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def _knows_replica(self, port: int) -> bool:
        with self.sentinel(port) as client:
            replicas = client.sentinel_slaves(SERVICE)
            others = client.sentinel_sentinels(SERVICE)
            return (
                isinstance(replicas, list)
                and bool(replicas)
                and isinstance(others, list)
                and len(others) >= 2
            )
