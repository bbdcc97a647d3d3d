"""One SSH tool's two runs of the command on the hosts, in a process of its own (`run`, started by
bench/ssh_reuse.py): fleetdeck's job runner with its pool, bare asyncssh, parallel-ssh, Ansible."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetdeck_worker.jobrun import JobRun
    from fleetdeck_worker.sshlogin import SshOptions

HOSTS = 64
FIRST = "127.0.4.1"
ADDRESSES = [f"127.0.4.{i}" for i in range(1, HOSTS + 1)]
CONCURRENCY = 64


@dataclass
class Spec:
    """What a tool's process needs to reach the hosts."""

    port: int
    key: str
    known_hosts: str
    command: str
    workdir: str


@dataclass
class Run:
    """One run of the command on every host: its wall clock and CPU time, each host's status."""

    wall_s: float
    cpu_s: float
    statuses: dict[str, str]


async def job_run(targets: str, hosts: int, command: str, ssh: SshOptions, name: str = "bench") -> JobRun:
    """One fleetdeck job, announced on an in-memory broker, for the worker's job runner to run."""
    from fleetdeck_common.broker.memory import MemoryBroker
    from fleetdeck_common.jobs import JobStore
    from fleetdeck_common.messages import Job
    from fleetdeck_common.targets import TargetPolicy
    from fleetdeck_worker.jobrun import JobRun

    store = JobStore(MemoryBroker())
    job = Job(
        job=name, targets=targets, command=command, hosts=hosts, by="bench", ts=time.time(), state="queued"
    )
    await store.announce(job)
    return JobRun(store, job, "bench-worker", TargetPolicy.from_entries(["127.0.0.0/8"]), ssh, CONCURRENCY)


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it waited for (Ansible and its ssh)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def twice(one: Callable[[int], Awaitable[dict[str, str]]]) -> list[Run]:
    """Two runs in a row, each timed: wall clock and CPU."""
    runs = []
    for number in (1, 2):
        wall, cpu = time.perf_counter(), cpu_seconds()
        statuses = await one(number)
        runs.append(Run(time.perf_counter() - wall, cpu_seconds() - cpu, statuses))
    return runs


async def _fleetdeck(spec: Spec) -> list[Run]:
    from fleetdeck_worker.sshlogin import SshOptions
    from fleetdeck_worker.sshpool import SshPool

    pool = SshPool(idle_timeout=60)
    key, known_hosts = Path(spec.key), Path(spec.known_hosts)
    options = SshOptions(
        user="root", port=spec.port, key=key, known_hosts=known_hosts, connect_timeout=60, pool=pool
    )

    async def one(number: int) -> dict[str, str]:
        run = await job_run(f"127.0.4.1-{HOSTS}", HOSTS, spec.command, options, f"bench-{number}")
        await run.run()
        return {r.host: r.status for r in run.results}

    runs = await twice(one)
    await pool.close()
    return runs


async def _asyncssh(spec: Spec) -> list[Run]:
    import asyncssh

    slots = asyncio.Semaphore(CONCURRENCY)

    async def host(address: str) -> str:
        async with slots:
            try:
                async with asyncssh.connect(
                    address,
                    port=spec.port,
                    username="root",
                    client_keys=[spec.key],
                    known_hosts=spec.known_hosts,
                    config=[],
                    agent_path=None,
                ) as conn:
                    result = await conn.run(spec.command, check=False, stdin=asyncssh.DEVNULL)
            except (OSError, asyncssh.Error) as exc:
                return f"error: {exc}"
            return "ok" if result.exit_status == 0 else "failed"

    async def one(_number: int) -> dict[str, str]:
        return dict(zip(ADDRESSES, await asyncio.gather(*map(host, ADDRESSES)), strict=True))

    return await twice(one)


async def _parallel_ssh(spec: Spec) -> list[Run]:
    from pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(
        ADDRESSES,
        user="root",
        port=spec.port,
        pkey=spec.key,
        pool_size=CONCURRENCY,
        num_retries=1,
        timeout=60,
        allow_agent=False,
    )

    async def one(_number: int) -> dict[str, str]:
        output = client.run_command(spec.command, stop_on_errors=False)
        client.join(output)
        statuses = {}
        for host in output:
            list(host.stdout or [])
            failed = "ok" if host.exit_code == 0 else "failed"
            statuses[host.host] = failed if host.exception is None else f"error: {host.exception!r}"
        return statuses

    return await twice(one)


def ansible_binary() -> str | None:
    return shutil.which("ansible", path=str(Path(sys.executable).parent)) or shutil.which("ansible")


async def _ansible(spec: Spec) -> list[Run]:
    binary = ansible_binary()
    assert binary is not None
    work = Path(spec.workdir) / "ansible"
    control = work / "cp"
    control.mkdir(parents=True, exist_ok=True)
    inventory = work / "inventory.ini"
    host_vars = (
        f"ansible_port={spec.port} ansible_user=root ansible_ssh_private_key_file={spec.key} "
        f"ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile={spec.known_hosts} "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
    )
    inventory.write_text("[bench]\n" + "".join(f"{a} {host_vars}\n" for a in ADDRESSES))
    config = work / "ansible.cfg"
    config.write_text(
        "[defaults]\nhost_key_checking = True\nforks = 64\ngathering = explicit\n"
        f"local_tmp = {work / 'tmp'}\n\n[ssh_connection]\ncontrol_path_dir = {control}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_HOME": str(work / "home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [binary, "bench", "-i", str(inventory), "-m", "raw", "-a", spec.command, "-o", "-f", "64"]

    async def one(_number: int) -> dict[str, str]:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
        statuses = dict.fromkeys(ADDRESSES, f"error: no line (exit {done.returncode})")
        for found in re.finditer(r"^(\S+) \| (\S+)", done.stdout, re.MULTILINE):
            if found[1] in statuses:
                statuses[found[1]] = "ok" if found[2] in ("CHANGED", "SUCCESS") else found[2].lower()
        return statuses

    try:
        return await twice(one)
    finally:
        _end_ssh_masters(control)


def _end_ssh_masters(control: Path) -> None:
    """End the ControlPersist ssh masters Ansible left (found by our control folder, by pid)."""
    mark = str(control).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if mark in Path(f"/proc/{entry}/cmdline").read_bytes():
                    os.kill(int(entry), signal.SIGTERM)


TOOLS = {"fleetdeck": _fleetdeck, "asyncssh": _asyncssh, "parallel-ssh": _parallel_ssh, "ansible": _ansible}


def run(tool: str, spec: Spec) -> list[Run]:
    """The tool's two runs (in the process of its own that ssh_reuse.py spawns for it)."""
    return asyncio.run(TOOLS[tool](spec))
