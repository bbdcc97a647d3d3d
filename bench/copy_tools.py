"""One tool's copy of a file to the hosts, in a process of its own (`run`, started by bench/copy.py):
fleetdeck's job runner with its SFTP copy, ClusterShell's `clush --copy`, parallel-ssh's `copy_file`."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .ssh_tools import ADDRESSES, CONCURRENCY, HOSTS, cpu_seconds


@dataclass
class CopySpec:
    """What a tool's process needs: the hosts' port and keys, the file, where it goes."""

    port: int
    key: str
    known_hosts: str
    source: str
    dest: str
    clush: str


@dataclass
class CopyRun:
    """One copy to every host: wall clock, CPU of the tool (its ssh/scp children too), statuses."""

    wall_s: float
    cpu_s: float
    statuses: dict[str, str]


async def _fleetdeck(spec: CopySpec) -> dict[str, str]:
    from fleetdeck_common.broker.memory import MemoryBroker
    from fleetdeck_common.jobs import JobStore
    from fleetdeck_common.messages import FileCopy, Job
    from fleetdeck_common.targets import TargetPolicy
    from fleetdeck_worker.jobrun import JobRun
    from fleetdeck_worker.sftpcopy import copy_runner
    from fleetdeck_worker.sshlogin import SshOptions
    from fleetdeck_worker.sshpool import SshPool

    data = Path(spec.source).read_bytes()
    copy = FileCopy(file="0" * 32, dest=spec.dest)
    pool = SshPool(idle_timeout=60)
    options = SshOptions(
        user="root",
        port=spec.port,
        key=Path(spec.key),
        known_hosts=Path(spec.known_hosts),
        connect_timeout=60,
        pool=pool,
    )
    store = JobStore(MemoryBroker())
    targets = f"{ADDRESSES[0]}-{HOSTS}"
    job = Job(
        job="bench-copy", targets=targets, command="", hosts=HOSTS, by="bench", ts=time.time(), state="queued"
    )
    job = job.model_copy(update={"file_copy": copy, "timeout": 600.0})
    await store.announce(job)
    policy = TargetPolicy.from_entries(["127.0.0.0/8"])
    run = JobRun(store, job, "bench-worker", policy, options, CONCURRENCY, copy_runner(copy, data))
    await run.run()
    await pool.close()
    return {r.host: r.status if r.error is None else f"{r.status}: {r.error}" for r in run.results}


def _clush(spec: CopySpec) -> dict[str, str]:
    ssh = (
        f"-F /dev/null -oPort={spec.port} -oIdentityFile={spec.key} -oIdentitiesOnly=yes "
        f"-oUserKnownHostsFile={spec.known_hosts} -oStrictHostKeyChecking=yes -oBatchMode=yes"
    )
    last = ADDRESSES[-1].rsplit(".", 1)[1]
    nodes = f"{ADDRESSES[0].rsplit('.', 1)[0]}.[1-{last}]"
    argv = [spec.clush, "-w", nodes, "-f", str(CONCURRENCY), "-l", "root", "-o", ssh]
    argv += ["--copy", spec.source, "--dest", spec.dest]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    statuses = dict.fromkeys(ADDRESSES, "ok" if done.returncode == 0 else f"exit {done.returncode}")
    for line in done.stderr.splitlines():
        host = line.split(":", 1)[0].strip()
        if host in statuses:
            statuses[host] = f"error: {line.split(':', 1)[1].strip()[:200]}"
    return statuses


def _parallel_ssh(spec: CopySpec) -> dict[str, str]:
    from gevent import joinall
    from pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(
        ADDRESSES,
        user="root",
        port=spec.port,
        pkey=spec.key,
        pool_size=CONCURRENCY,
        num_retries=1,
        timeout=600,
        allow_agent=False,
    )
    greenlets = client.copy_file(spec.source, spec.dest)
    joinall(greenlets, raise_error=False)
    statuses = {}
    for address, greenlet in zip(ADDRESSES, greenlets, strict=True):
        statuses[address] = "ok" if greenlet.exception is None else f"error: {greenlet.exception!r}"[:200]
    return statuses


def run(tool: str, spec: CopySpec) -> CopyRun:
    """The tool's copy to every host, timed (in the process of its own that copy.py spawns)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    if tool == "fleetdeck":
        statuses = asyncio.run(_fleetdeck(spec))
    elif tool == "clush":
        statuses = _clush(spec)
    else:
        statuses = _parallel_ssh(spec)
    return CopyRun(time.perf_counter() - wall, cpu_seconds() - cpu, statuses)
