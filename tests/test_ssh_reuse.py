"""The worker keeps SSH connections to recently used hosts: a second job on the same hosts opens no
new connection (counted by the servers), idle ones close, a dead one is replaced without failing
the host, a changed host key is still refused, settings decide which connection may be reused.

Real OpenSSH sshd on loopback (127.0.3.11-14), logging every accepted login (LogLevel VERBOSE);
open connections are counted in the kernel's TCP table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import Job, Outcome
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_worker.jobrun import JobRun
from fleetdeck_worker.settings import WorkerSettings
from fleetdeck_worker.ssh import run_on_host
from fleetdeck_worker.sshlogin import SshOptions
from fleetdeck_worker.sshpool import SshPool
from testbed.opensshd import OpenSshd, client_key, established, logins, start_sshd
from testbed.procs import wait_until
from tests.support.waiting import eventually

pytestmark = pytest.mark.ssh

ADDRESSES = ("127.0.3.11", "127.0.3.12", "127.0.3.13")
OWN = "127.0.3.14"  # restarted with another host key: a test of its own


@dataclass
class Hosts:
    workdir: Path
    servers: dict[str, OpenSshd]
    key: Path
    public: Path
    known_hosts: Path

    def options(self, pool: SshPool | None, **changes: Any) -> SshOptions:
        options = SshOptions(
            user="root",
            port=self.servers[ADDRESSES[0]].port,  # every server here listens on the same port
            key=self.key,
            known_hosts=self.known_hosts,
            connect_timeout=5,
            pool=pool,
        )
        return dataclasses.replace(options, **changes)

    def start(self, address: str, port: int) -> OpenSshd:
        server = start_sshd(
            self.workdir / address,
            address,
            self.public,
            self.workdir / "commands.jsonl",
            port,
            record=False,
            log_level="VERBOSE",
            home=self.workdir / "home",
        )
        self.servers[address] = server
        return server

    def crash(self, address: str) -> OpenSshd:
        """Kill the server and every connection it serves (a host that went down), then start it
        again on the same port. Stopping only the listener would leave the connections working."""
        server = self.servers[address]
        sessions = _children(server)
        server.stop()
        for pid in sessions:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return self.start(address, server.port)

    def logins(self) -> dict[str, int]:
        return {address: logins(server) for address, server in self.servers.items()}

    def open(self) -> dict[str, int]:
        return {address: established(address, server.port) for address, server in self.servers.items()}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    workdir = tmp_path_factory.mktemp("ssh-reuse")
    private, public = client_key(workdir / "client")
    hosts = Hosts(workdir, {}, private, public, workdir / "known_hosts")
    port = 0  # a free one, then the same for every address
    for address in ADDRESSES:
        port = hosts.start(address, port).port
    hosts.known_hosts.write_text("".join(server.known_hosts_line for server in hosts.servers.values()))
    yield hosts
    for server in hosts.servers.values():
        server.stop()


async def run_everywhere(
    options: SshOptions, command: str, addresses: tuple[str, ...] = ADDRESSES
) -> list[Outcome]:
    runs = (run_on_host(address, command, 10, options, asyncio.Event()) for address in addresses)
    return list(await asyncio.gather(*runs))


async def run_job(options: SshOptions, targets: str, command: str) -> dict[str, str]:
    """One job through the worker's job runner (in-memory broker): each host's status."""
    store = JobStore(MemoryBroker())
    job = Job(
        job=f"reuse-{time.monotonic_ns()}",
        targets=targets,
        command=command,
        hosts=len(ADDRESSES),
        by="test",
        ts=time.time(),
        state="queued",
    )
    await store.announce(job)
    run = JobRun(store, job, "test-worker", TargetPolicy.from_entries(["127.0.0.0/8"]), options, 64)
    await run.run()
    return {result.host: result.status for result in run.results}


async def test_a_second_job_on_the_same_hosts_opens_no_new_connection(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    options = hosts.options(pool)
    targets = ",".join(ADDRESSES)
    try:
        before = hosts.logins()
        assert await run_job(options, targets, "echo first") == dict.fromkeys(ADDRESSES, "ok")
        first = hosts.logins()
        assert {a: first[a] - before[a] for a in ADDRESSES} == dict.fromkeys(ADDRESSES, 1)
        assert hosts.open() == dict.fromkeys(ADDRESSES, 1)
        assert await run_job(options, targets, "echo second") == dict.fromkeys(ADDRESSES, "ok")
        assert hosts.logins() == first  # no new login on any server
        assert hosts.open() == dict.fromkeys(ADDRESSES, 1)
        assert (pool.stats.opened, pool.stats.reused) == (3, 3)
    finally:
        await pool.close()
    await eventually(lambda: hosts.open() == dict.fromkeys(ADDRESSES, 0), 10, "the connections to close")


async def test_commands_at_once_on_one_host_share_its_connection_up_to_four(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    options = hosts.options(pool)
    host = ADDRESSES[0]
    try:
        before = hosts.logins()[host]
        two = await run_everywhere(options, "sleep 0.3; echo two", (host, host))
        assert [(o.status, o.stdout) for o in two] == [("ok", "two\n")] * 2
        assert hosts.logins()[host] == before + 1
        six = await run_everywhere(options, "sleep 0.3; echo six", (host,) * 6)
        assert [(o.status, o.stdout) for o in six] == [("ok", "six\n")] * 6
        # Four sessions a connection (OpenSSH allows ten; a stop may need one more each): two now.
        assert hosts.logins()[host] == before + 2
        assert pool.open_connections() == 2
    finally:
        await pool.close()


async def test_idle_connections_are_closed(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=0.5)
    try:
        outcomes = await run_everywhere(hosts.options(pool), "true")
        assert [o.status for o in outcomes] == ["ok"] * 3
        await eventually(lambda: hosts.open() == dict.fromkeys(ADDRESSES, 0), 10, "idle connections to close")
        assert pool.stats.closed_idle == 3 and pool.open_connections() == 0
    finally:
        await pool.close()


async def test_over_the_cap_the_least_recently_used_idle_connection_is_closed(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60, max_connections=2)
    options = hosts.options(pool)
    try:
        for address in ADDRESSES:
            assert (await run_on_host(address, "true", 10, options, asyncio.Event())).status == "ok"
        assert pool.stats.evicted == 1
        first, *rest = ADDRESSES
        await eventually(
            lambda: hosts.open() == {first: 0, **dict.fromkeys(rest, 1)}, 10, "the oldest connection to close"
        )
    finally:
        await pool.close()


async def test_a_restarted_server_is_reconnected_without_failing_the_host(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    options = hosts.options(pool)
    host = ADDRESSES[1]
    try:
        assert (await run_on_host(host, "true", 10, options, asyncio.Event())).status == "ok"
        before = hosts.logins()[host]
        # Synchronous: the event loop does not run meanwhile, so the pool has not seen the
        # connection drop and tries it first.
        hosts.crash(host)
        outcome = await run_on_host(host, "echo again", 10, options, asyncio.Event())
        assert (outcome.status, outcome.stdout, outcome.error) == ("ok", "again\n", None)
        assert hosts.logins()[host] == before + 1
        assert pool.stats.replaced == 1  # the kept connection failed before the command was sent
    finally:
        await pool.close()


def _children(server: OpenSshd) -> list[int]:
    """The sshd processes serving connections to `server` (children of its listener)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(
                    server.service.pid
                ):
                    found.append(int(pid))
    return found


async def test_a_connection_that_stopped_answering_is_replaced(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    options = hosts.options(pool, connect_timeout=3)
    host = ADDRESSES[2]
    try:
        assert (await run_on_host(host, "true", 10, options, asyncio.Event())).status == "ok"
        frozen = _children(hosts.servers[host])
        for pid in frozen:  # like a dropped network: the connection is there, nobody answers
            os.kill(pid, signal.SIGSTOP)
        try:
            outcome = await run_on_host(host, "echo fresh", 10, options, asyncio.Event())
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGKILL)
        assert (outcome.status, outcome.stdout) == ("ok", "fresh\n")
        assert pool.stats.replaced == 1
    finally:
        await pool.close()


async def test_a_changed_host_key_on_reconnect_is_refused(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    server = hosts.start(OWN, hosts.servers[ADDRESSES[0]].port)
    known_hosts = hosts.workdir / "known_hosts_own"
    known_hosts.write_text(server.known_hosts_line)
    options = hosts.options(pool, known_hosts=known_hosts)
    try:
        assert (await run_on_host(OWN, "true", 10, options, asyncio.Event())).status == "ok"
        before = logins(server)
        for name in ("host_ed25519", "host_ed25519.pub"):
            (hosts.workdir / OWN / name).unlink()
        server = hosts.crash(OWN)  # back on the same address and port, with another host key
        outcome = await run_on_host(OWN, "echo should-not-run", 10, options, asyncio.Event())
        assert outcome.status == "error"
        assert outcome.error is not None and "host key not verifiable" in outcome.error
        assert logins(server) == before  # refused before logging in
    finally:
        await pool.close()
        hosts.servers.pop(OWN).stop()


async def test_a_connection_is_reused_only_under_the_same_settings(hosts: Hosts, tmp_path: Path) -> None:
    pool = SshPool(idle_timeout=60)
    host = ADDRESSES[0]
    options = hosts.options(pool)
    same = hosts.options(pool, connect_timeout=7, output_limit=1000)  # not part of who logs in where
    copied = tmp_path / "known_hosts"
    shutil.copy(hosts.known_hosts, copied)
    other = hosts.options(pool, known_hosts=copied)
    try:
        before = hosts.logins()[host]
        for opts in (options, same, other, options):
            assert (await run_on_host(host, "true", 10, opts, asyncio.Event())).status == "ok"
        assert hosts.logins()[host] == before + 2
        base = options.connection_key(host)
        for field, value in {
            "port": 2,
            "user": "nobody",
            "key": tmp_path / "other_key",
            "known_hosts": copied,
            "check_host_keys": False,
        }.items():
            assert hosts.options(pool, **{field: value}).connection_key(host) != base, field
        assert options.connection_key("127.0.3.99") != base
    finally:
        await pool.close()


async def test_closing_the_pool_ends_every_connection(hosts: Hosts) -> None:
    pool = SshPool(idle_timeout=60)
    outcomes = await run_everywhere(hosts.options(pool), "true")
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert hosts.open() == dict.fromkeys(ADDRESSES, 1)
    await pool.close()
    await eventually(lambda: hosts.open() == dict.fromkeys(ADDRESSES, 0), 10, "every connection to close")
    # Commands after close still run, on connections of their own that are not kept.
    assert (await run_on_host(ADDRESSES[0], "true", 10, hosts.options(pool), asyncio.Event())).status == "ok"
    assert pool.open_connections() == 0


def test_a_worker_that_ends_without_closing_its_pool_still_disconnects_cleanly(hosts: Hosts) -> None:
    """asyncio.run cancels the pool's idle-timer task at the end of the program; it then closes
    every connection with a proper SSH disconnect, as `close()` does."""
    host = ADDRESSES[2]
    server = hosts.servers[host]
    before = server.service.log().count("Disconnected by application")
    program = (
        "import asyncio, pathlib\n"
        "from fleetdeck_worker.ssh import run_on_host\n"
        "from fleetdeck_worker.sshlogin import SshOptions\n"
        "from fleetdeck_worker.sshpool import SshPool\n"
        "async def main():\n"
        f"    options = SshOptions(user='root', port={server.port}, key=pathlib.Path({str(hosts.key)!r}),\n"
        f"        known_hosts=pathlib.Path({str(hosts.known_hosts)!r}), pool=SshPool(60))\n"
        f"    outcome = await run_on_host({host!r}, 'true', 10, options, asyncio.Event())\n"
        "    assert outcome.status == 'ok', outcome\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: server.service.log().count("Disconnected by application") == before + 1,
        10,
        what="the server to log a clean disconnect",
    )


def test_the_reuse_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_SSH_IDLE", "15")
    monkeypatch.setenv("FLEETDECK_SSH_MAX_CONNECTIONS", "20")
    pool = WorkerSettings().ssh_options().pool
    assert pool is not None and (pool.idle_timeout, pool.max_connections) == (15, 20)
    monkeypatch.setenv("FLEETDECK_SSH_IDLE", "0")
    assert WorkerSettings().ssh_options().pool is None  # a connection per command, as before
    defaults = WorkerSettings.model_fields
    assert (defaults["ssh_idle"].default, defaults["ssh_max_connections"].default) == (60.0, 512)
    for name, bad in (("FLEETDECK_SSH_IDLE", "-1"), ("FLEETDECK_SSH_MAX_CONNECTIONS", "0")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=name):
            WorkerSettings()
        monkeypatch.delenv(name)
