"""Benchmark: one command on 100 loopback SSH hosts, fleetdeck's worker against ClusterShell's clush.

Both run in the same process tree, on the same SSH fleet (testbed/sshfleet.py, asyncssh
servers on 127.0.0.2-101), 64 hosts at a time, with grouped output, alternating rounds. Writes
bench/exec_fanout.md (raw figures: bench/results/), quoted in docs/benchmarks.md and the README.

    scripts/bench            # or: .venv/bin/python -m bench.exec_fanout --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from fleetdeck_worker.sshlogin import SshOptions
from testbed.procs import ROOT, Service, wait_until

from .harness import Result, output_options, publish, table
from .measure import spread
from .ssh_tools import CONCURRENCY, job_run

NAME = "exec_fanout"
HOSTS = 100
TARGETS = f"127.0.0.2-{HOSTS + 1}"


def start_fleet(workdir: Path) -> tuple[Service, int, Path, Path]:
    """The asyncssh fleet the tests use (testbed/sshfleet.py), and its key, port and known hosts."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = workdir / "id_ed25519"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    key.write_public_key(str(workdir / "id_ed25519.pub"))
    argv = [sys.executable, "-m", "testbed.sshfleet", str(workdir), "--count", str(HOSTS)]
    env = {"PYTHONPATH": str(ROOT)}
    fleet = Service("sshfleet", [*argv, "--client-key", str(workdir / "id_ed25519.pub")], env, workdir)
    ready = workdir / "ready.json"
    wait_until(ready.exists, 30, what="the SSH fleet")
    return fleet, json.loads(ready.read_text())["port"], key_path, workdir / "known_hosts"


async def fleetdeck_round(port: int, key: Path, known_hosts: Path, command: str) -> float:
    ssh = SshOptions(user="bench", port=port, key=key, known_hosts=known_hosts)
    run = await job_run(TARGETS, HOSTS, command, ssh)
    started = time.perf_counter()
    await run.run()
    elapsed = time.perf_counter() - started
    if (ok := sum(1 for r in run.results if r.status == "ok")) != HOSTS:
        raise SystemExit(f"fleetdeck: only {ok}/{HOSTS} hosts succeeded")
    return elapsed


def clush_round(port: int, key: Path, known_hosts: Path, command: str) -> float:
    clush = shutil.which("clush", path=str(Path(sys.executable).parent)) or "clush"
    ssh_options = (
        f"-p {port} -i {key} -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
        "-o BatchMode=yes -o IdentitiesOnly=yes -o ControlMaster=no -l bench"
    )
    started = time.perf_counter()
    done = subprocess.run(  # noqa: PLW1510 - the exit code is checked below
        [clush, "-w", f"127.0.0.[2-{HOSTS + 1}]", "-f", str(CONCURRENCY), "-b", "-o", ssh_options, command],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"clush failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def render(times: dict[str, list[float]], rounds: int, command: str) -> Result:
    rows = []
    for tool, values in times.items():
        s = spread(values)
        seconds = [f"{s[k]:.2f} s" for k in ("median", "min", "max")]
        rows.append([tool, *seconds, f"{HOSTS / s['median']:.0f}"])
    short = (
        f"One command (`{command}`) on {HOSTS} loopback SSH hosts, {CONCURRENCY} at a time, "
        f"{rounds} alternating rounds each; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}.\n\n"
        + table(("tool", "median", "min", "max", "hosts/s (median)"), rows)
    )
    full = (
        "fleetdeck runs the job through its worker's job runner (asyncssh, in-memory broker, results "
        "grouped); ClusterShell runs `clush -b` over OpenSSH.\n\n" + short
    )
    data = {"hosts": HOSTS, "concurrency": CONCURRENCY, "rounds": rounds, "command": command, "times": times}
    return Result(NAME, "Exec fan-out", full, data, quoted=short, short=short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--command", default="true")
    output_options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fleet, port, key, known_hosts = start_fleet(Path(tmp))
        try:
            times: dict[str, list[float]] = {"fleetdeck": [], "ClusterShell clush": []}
            for _ in range(args.rounds):
                times["fleetdeck"].append(asyncio.run(fleetdeck_round(port, key, known_hosts, args.command)))
                times["ClusterShell clush"].append(clush_round(port, key, known_hosts, args.command))
        finally:
            fleet.stop()
    publish(args, render(times, args.rounds, args.command))


if __name__ == "__main__":
    main()
