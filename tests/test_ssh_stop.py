"""A timeout or a cancel stops the command on the host: soon after, no process it started is left in
the process table, whatever the command does with signals, children or pipes; the result says so.

Real OpenSSH sshd on loopback: a stock one (the login shell runs the command) and one with a forced
command like the test fleet's (a recorder that execs /bin/sh). Each command carries a unique marker
in its environment (so every process it starts inherits it) and the test scans /proc for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetdeck_common.messages import Outcome
from fleetdeck_worker.ssh import run_on_host
from fleetdeck_worker.sshlogin import SshOptions
from fleetdeck_worker.sshpool import SshPool
from testbed.opensshd import OpenSshd, client_key, start_sshd
from tests.support.waiting import eventually

pytestmark = pytest.mark.ssh

STOCK = "127.0.3.1"
FORCED = "127.0.3.2"
TIMEOUT = 1.0
# Left behind means still there long after the stop, not slow: a loaded machine (the suite beside
# other work) takes over 2 s for sshd's teardown, and a leaked `sleep 100` is still there at 10 s.
STOPPED_WITHIN = 10.0

# The four kinds the stop must handle, and one whose shell exits leaving its child behind.
KINDS = {
    "sleep": "FDMARK={m} sleep 100",
    "pipeline": "export FDMARK={m}; sleep 100 | cat | cat",
    "background children": "export FDMARK={m}; sleep 100 & sleep 100; wait",
    "ignores HUP and TERM": "export FDMARK={m}; trap '' HUP TERM; sleep 100",
    "shell gone, child left": "export FDMARK={m}; sleep 100 & echo started",
}


@dataclass
class Hosts:
    servers: dict[str, OpenSshd]
    key: Path
    known_hosts: Path

    def options(self, address: str, pool: SshPool | None) -> SshOptions:
        return SshOptions(
            user="root",
            port=self.servers[address].port,
            key=self.key,
            known_hosts=self.known_hosts,
            connect_timeout=10,
            pool=pool,
        )


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    workdir = tmp_path_factory.mktemp("ssh-stop")
    private, public = client_key(workdir / "client")
    commands, home = workdir / "commands.jsonl", workdir / "home"  # HOME: no start-up files
    servers = {
        STOCK: start_sshd(workdir / "stock", STOCK, public, commands, record=False, home=home),
        FORCED: start_sshd(workdir / "forced", FORCED, public, commands, home=home),
    }
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("".join(server.known_hosts_line for server in servers.values()))
    yield Hosts(servers, private, known_hosts)
    for server in servers.values():
        server.stop()


def marker() -> str:
    return f"stop-{uuid.uuid4().hex[:12]}"


def processes(mark: str) -> dict[int, bytes]:
    """Live processes (zombies have ended) whose command line or environment carries `mark`, with
    their command lines."""
    found = {}
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline, open(f"/proc/{entry}/environ", "rb") as env:
                line = cmdline.read()
                if needle in line or needle in env.read():
                    found[int(entry)] = line
        except OSError:
            continue  # ended meanwhile
    return found


def kill_all(mark: str) -> None:
    for pid in processes(mark):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


async def wait_for_processes(mark: str, timeout: float = 10.0) -> None:
    """Until the command's `sleep` runs."""
    await eventually(
        lambda: any(line.startswith(b"sleep") for line in processes(mark).values()),
        timeout,
        f"the command marked {mark} to start",
    )


async def gone_after(mark: str, since: list[float], limit: float) -> float | None:
    """Seconds from since[0] (once set) until no process carries `mark`; None if still there."""
    await eventually(lambda: since, 60, "the stop to begin")
    try:
        await eventually(lambda: not processes(mark), since[0] + limit + 1 - time.monotonic(), "the end")
    except TimeoutError:
        return None
    return time.monotonic() - since[0]


async def stop_all_kinds(hosts: Hosts, address: str, way: str, pool: SshPool | None) -> None:
    """Run every kind at once on one host, stop them by `way`, check the process table."""
    options = hosts.options(address, pool)
    marks = {kind: marker() for kind in KINDS}
    cancel = asyncio.Event()
    timeout = TIMEOUT if way == "timeout" else 60.0
    asked: list[float] = []  # when the stop was asked for (the timeout started at least this late)
    if way == "timeout":
        asked.append(time.monotonic() + TIMEOUT)
    runs = [
        asyncio.create_task(run_on_host(address, command.format(m=marks[kind]), timeout, options, cancel))
        for kind, command in KINDS.items()
    ]
    watches = [asyncio.create_task(gone_after(marks[kind], asked, STOPPED_WITHIN)) for kind in KINDS]
    try:
        if way == "cancel":
            for kind in KINDS:
                await wait_for_processes(marks[kind])
            asked.append(time.monotonic())
            cancel.set()
        outcomes: list[Outcome] = await asyncio.gather(*runs)
        took = await asyncio.gather(*watches)
        for kind, outcome, seconds in zip(KINDS, outcomes, took, strict=True):
            assert seconds is not None and seconds <= STOPPED_WITHIN, (kind, seconds, processes(marks[kind]))
            if way == "timeout":
                assert (outcome.status, outcome.error) == (
                    "timeout",
                    "no exit after 1s; stopped (the command's processes were killed)",
                ), kind
            else:
                assert (outcome.status, outcome.error) == (
                    "cancelled",
                    "cancelled while running; stopped (the command's processes were killed)",
                ), kind
            assert outcome.exit_code is None
            assert outcome.stderr == ""
            assert outcome.stdout == ("started\n" if kind == "shell gone, child left" else "")
    finally:
        for mark in marks.values():
            kill_all(mark)


@pytest.mark.parametrize("address", [STOCK, FORCED], ids=["stock sshd", "forced command"])
@pytest.mark.parametrize("way", ["timeout", "cancel"])
async def test_a_stopped_command_leaves_no_process_behind(hosts: Hosts, address: str, way: str) -> None:
    pool = SshPool(idle_timeout=60)
    try:
        await stop_all_kinds(hosts, address, way, pool)
    finally:
        await pool.close()


async def test_a_stop_works_without_a_kept_connection(hosts: Hosts) -> None:
    await stop_all_kinds(hosts, STOCK, "timeout", None)


@pytest.mark.parametrize("address", [STOCK, FORCED], ids=["stock sshd", "forced command"])
async def test_stdout_and_stderr_stay_apart_and_exact(hosts: Hosts, address: str) -> None:
    pool = SshPool(idle_timeout=60)
    options = hosts.options(address, pool)
    try:
        outcome = await run_on_host(
            address,
            "echo out; echo err >&2; printf 'fleetdeck-pgid 1\\n' >&2; printf 'no newline' >&2; exit 3",
            10,
            options,
            asyncio.Event(),
        )
        assert (outcome.status, outcome.exit_code, outcome.error) == ("failed", 3, None)
        assert outcome.stdout == "out\n"
        assert outcome.stderr == "err\nfleetdeck-pgid 1\nno newline"
        big = await run_on_host(
            address, "head -c 10000 /dev/zero | tr '\\0' e >&2; echo done", 10, options, asyncio.Event()
        )
        assert (big.status, big.stdout, big.stderr) == ("ok", "done\n", "e" * 10000)
        killed = await run_on_host(address, "kill -s KILL $$", 10, options, asyncio.Event())
        assert (killed.status, killed.error) == ("failed", "killed by signal KILL")
    finally:
        await pool.close()


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid(1)")
async def test_a_process_that_left_the_group_is_reported_not_confirmed(hosts: Hosts) -> None:
    """A process that starts its own session escapes the group kill; the result must not claim
    the command was stopped while that process still holds its output."""
    mark = marker()
    pool = SshPool(idle_timeout=60)
    try:
        outcome = await run_on_host(
            STOCK,
            f"export FDMARK={mark}; setsid sleep 100 & sleep 100",
            TIMEOUT,
            hosts.options(STOCK, pool),
            asyncio.Event(),
        )
        assert outcome.status == "timeout"
        assert outcome.error is not None
        assert outcome.error.startswith("no exit after 1s; could not confirm it ended ("), outcome.error
    finally:
        kill_all(mark)
        await pool.close()
