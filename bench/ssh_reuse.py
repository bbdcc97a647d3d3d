"""Benchmark: the same command twice on 64 OpenSSH hosts, fleetdeck's runner keeping its connections
against parallel-ssh, bare asyncssh and (where it is installed) Ansible, in one run.

What it measures and how: docs/benchmarks.md. Its summary: bench/ssh_reuse.md
(raw figures in bench/results/).

    .venv/bin/python -m bench.ssh_reuse --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .harness import ROOT, Result, table, verdict, write
from .measure import spread

NAME = "ssh_reuse"
HOSTS = 64
FIRST = "127.0.4.1"
ADDRESSES = [f"127.0.4.{i}" for i in range(1, HOSTS + 1)]
TARGETS = f"127.0.4.1-{HOSTS}"
CONCURRENCY = 64
TARGET_RATIO = 0.3
TOOLS = ("fleetdeck", "parallel-ssh", "asyncssh", "ansible")
LABELS = {
    "fleetdeck": "fleetdeck (JobRun + SshPool)",
    "parallel-ssh": "parallel-ssh (one client)",
    "asyncssh": "bare asyncssh (new connection per run)",
    "ansible": "Ansible `-m raw` (ControlPersist 60s)",
}


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
    wall_s: float
    cpu_s: float
    statuses: dict[str, str]


# --- one tool, in its own process ---------------------------------------------------------------


async def _fleetdeck(spec: Spec) -> list[Run]:
    from fleetdeck_common.broker.memory import MemoryBroker
    from fleetdeck_common.jobs import JobStore
    from fleetdeck_common.messages import Job
    from fleetdeck_common.targets import TargetPolicy
    from fleetdeck_worker.jobrun import JobRun
    from fleetdeck_worker.sshlogin import SshOptions
    from fleetdeck_worker.sshpool import SshPool

    pool = SshPool(idle_timeout=60)
    options = SshOptions(
        user="root",
        port=spec.port,
        key=Path(spec.key),
        known_hosts=Path(spec.known_hosts),
        connect_timeout=60,
        pool=pool,
    )
    policy = TargetPolicy.from_entries(["127.0.0.0/8"])
    runs = []
    for number in (1, 2):
        store = JobStore(MemoryBroker())
        job = Job(
            job=f"bench-{number}",
            targets=TARGETS,
            command=spec.command,
            hosts=HOSTS,
            by="bench",
            ts=time.time(),
            state="queued",
        )
        await store.announce(job)
        run = JobRun(store, job, "bench-worker", policy, options, CONCURRENCY)
        wall, cpu = time.perf_counter(), time.process_time()
        await run.run()
        runs.append(
            Run(
                time.perf_counter() - wall,
                time.process_time() - cpu,
                {r.host: r.status for r in run.results},
            )
        )
    await pool.close()
    return runs


async def _asyncssh(spec: Spec) -> list[Run]:
    import asyncssh

    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(host: str) -> str:
        async with slots:
            try:
                async with asyncssh.connect(
                    host,
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

    runs = []
    for _number in (1, 2):
        wall, cpu = time.perf_counter(), time.process_time()
        statuses = await asyncio.gather(*(one(host) for host in ADDRESSES))
        runs.append(
            Run(
                time.perf_counter() - wall,
                time.process_time() - cpu,
                dict(zip(ADDRESSES, statuses, strict=True)),
            )
        )
    return runs


def _parallel_ssh(spec: Spec) -> list[Run]:
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
    runs = []
    for _number in (1, 2):
        wall, cpu = time.perf_counter(), time.process_time()
        output = client.run_command(spec.command, stop_on_errors=False)
        client.join(output)
        statuses = {}
        for host_output in output:
            list(host_output.stdout or [])
            if host_output.exception is not None:
                statuses[host_output.host] = f"error: {host_output.exception!r}"
            else:
                statuses[host_output.host] = "ok" if host_output.exit_code == 0 else "failed"
        runs.append(Run(time.perf_counter() - wall, time.process_time() - cpu, statuses))
    return runs


def _ansible_binary() -> str | None:
    return shutil.which("ansible", path=str(Path(sys.executable).parent)) or shutil.which("ansible")


def _ansible(spec: Spec) -> list[Run]:
    binary = _ansible_binary()
    assert binary is not None
    work = Path(spec.workdir) / "ansible"
    work.mkdir(parents=True, exist_ok=True)
    control = work / "cp"
    control.mkdir(exist_ok=True)
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
    runs = []
    try:
        for _number in (1, 2):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter()
            done = subprocess.run(
                [binary, "bench", "-i", str(inventory), "-m", "raw", "-a", spec.command, "-o", "-f", "64"],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
                check=False,
            )
            elapsed = time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            statuses = dict.fromkeys(ADDRESSES, f"error: no line (exit {done.returncode})")
            for line in done.stdout.splitlines():
                found = re.match(r"^(\S+) \| (\S+)", line)
                if found and found.group(1) in statuses:
                    word = found.group(2)
                    statuses[found.group(1)] = "ok" if word in ("CHANGED", "SUCCESS") else word.lower()
            runs.append(Run(elapsed, cpu, statuses))
    finally:
        _end_ssh_masters(control)
    return runs


def _end_ssh_masters(control: Path) -> None:
    """End the ControlPersist ssh masters Ansible left (found by our control folder, by pid)."""
    mark = str(control).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if mark in Path(f"/proc/{entry}/cmdline").read_bytes():
                    os.kill(int(entry), signal.SIGTERM)


def child(tool: str, spec: Spec) -> None:
    if tool == "fleetdeck":
        runs = asyncio.run(_fleetdeck(spec))
    elif tool == "asyncssh":
        runs = asyncio.run(_asyncssh(spec))
    elif tool == "parallel-ssh":
        runs = _parallel_ssh(spec)
    else:
        runs = _ansible(spec)
    print(json.dumps([asdict(run) for run in runs]))


# --- the hosts and the rounds -------------------------------------------------------------------


def start_hosts(workdir: Path) -> tuple[list[Any], Spec]:
    from testbed.opensshd import client_key, start_sshd
    from testbed.procs import free_port

    key, public = client_key(workdir / "client")
    port = free_port(FIRST, also=ADDRESSES)
    servers = []
    try:
        for address in ADDRESSES:
            servers.append(
                start_sshd(
                    workdir / "hosts" / address,
                    address,
                    public,
                    workdir / "commands.jsonl",
                    port,
                    record=False,
                    home=workdir / "home",
                )
            )
    except BaseException:
        for server in servers:
            server.stop()
        raise
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("".join(server.known_hosts_line for server in servers))
    return servers, Spec(port, str(key), str(known_hosts), "", str(workdir))


def run_tool(tool: str, spec: Spec) -> tuple[list[Run], float]:
    """The tool's two runs, and the CPU seconds its whole process used (start-up included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "bench.ssh_reuse", "--child", tool, "--spec", json.dumps(asdict(spec))],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    runs = [Run(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    from testbed.opensshd import established
    from testbed.procs import wait_until

    wait_until(
        lambda: sum(established(a, spec.port) for a in ADDRESSES) == 0,
        90,
        0.1,
        f"{tool}'s connections to close",
    )
    return runs, total


def seconds(row: dict[str, float]) -> str:
    return f"{row['median']:.2f} s ({row['min']:.2f}-{row['max']:.2f})"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("asyncssh", "parallel-ssh", "ansible-core"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    found["openssh"] = (sshd.stderr or sshd.stdout).split(",")[0].strip()
    return found


def report(
    results: dict[str, list[dict[str, Any]]], rounds: int, command: str, notes: list[str], load_before: float
) -> Result:
    rows = []
    summary: dict[str, Any] = {}
    for tool, tool_rounds in results.items():
        first = spread([r["runs"][0]["wall_s"] for r in tool_rounds])
        second = spread([r["runs"][1]["wall_s"] for r in tool_rounds])
        ratio = statistics.median(r["runs"][1]["wall_s"] / r["runs"][0]["wall_s"] for r in tool_rounds)
        cpu = [statistics.median(r["runs"][i]["cpu_s"] for r in tool_rounds) for i in (0, 1)]
        same = all(
            r["runs"][0]["statuses"] == r["runs"][1]["statuses"]
            and set(r["runs"][0]["statuses"].values()) == {"ok"}
            for r in tool_rounds
        )
        summary[tool] = {"first_s": first, "second_s": second, "ratio": ratio, "cpu_s": cpu, "all_ok": same}
        cpu_cell = f"{cpu[0]:.2f} s / {cpu[1]:.2f} s"
        rows.append(
            [LABELS[tool], seconds(first), seconds(second), f"{ratio:.2f}", cpu_cell, verdict_yes(same)]
        )
    header = [
        "tool",
        "first run: median (min-max)",
        "second run: median (min-max)",
        "second / first (median)",
    ]
    header += ["CPU first / second (median)", "every host ok, both runs"]
    target = ""
    if fleetdeck := summary.get("fleetdeck"):
        met = fleetdeck["ratio"] <= TARGET_RATIO and fleetdeck["all_ok"]
        target = (
            f"\nTarget: fleetdeck's second run at most {TARGET_RATIO}x its first, same statuses: "
            f"{verdict(met)} ({fleetdeck['ratio']:.2f}x).\n"
        )
    found = versions()
    context = (
        f"`{command}` on {HOSTS} OpenSSH hosts (64 sshd on 127.0.4.1-{HOSTS}), {CONCURRENCY} at a time, "
        f"twice in a row per tool, {rounds} rounds in a rotating order; {os.cpu_count()} CPUs shared with "
        f"other work (1-minute load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after), "
        f"{time.strftime('%Y-%m-%d')}; " + ", ".join(f"{k} {v}" for k, v in found.items()) + "."
    )
    body = (
        f"{context}\n\n{table(header, rows)}\n{target}\nCPU is the tool's process (user + system) during "
        "each run; Ansible's includes the ssh processes it waited for, not its persisting ssh masters.\n"
        + "".join(f"\n{note}\n" for note in notes)
    )
    data = {"hosts": HOSTS, "concurrency": CONCURRENCY, "rounds": rounds, "command": command}
    data |= {"versions": found, "summary": summary, "rounds_detail": results, "notes": notes}
    data |= {"load_before": load_before, "load_after": os.getloadavg()[0]}
    return Result(NAME, "SSH connection reuse", body, data)


def verdict_yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--command", default="true")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma list of " + ", ".join(TOOLS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Spec(**json.loads(args.spec)))
        return
    tools = [t for t in args.tools.split(",") if t]
    notes = []
    if "ansible" in tools and _ansible_binary() is None:
        tools.remove("ansible")
        notes.append("Ansible is not installed here (`pip install ansible-core`), so it was left out.")
    results: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fleetdeck-ssh-reuse-") as tmp:
        servers, spec = start_hosts(Path(tmp))
        spec.command = args.command
        try:
            for number in range(args.rounds):
                order = tools[number % len(tools) :] + tools[: number % len(tools)]
                for tool in order:
                    runs, total = run_tool(tool, spec)
                    results[tool].append({"runs": [asdict(r) for r in runs], "process_cpu_s": total})
                    print(
                        f"round {number + 1} {tool}: first {runs[0].wall_s:.2f} s, second "
                        f"{runs[1].wall_s:.2f} s",
                        file=sys.stderr,
                    )
        finally:
            for server in servers:
                server.stop()
    result = report(results, args.rounds, args.command, notes, load_before)
    write(result)
    print(result.summary)


if __name__ == "__main__":
    main()
