"""Benchmark: one command on 100 loopback SSH hosts, fleetdeck's worker against ClusterShell's clush.

Both on the same SSH fleet (testbed/sshfleet.py), 64 hosts at a time, with grouped output, in
alternating rounds; docs/benchmarks.md says more. Its summary: bench/exec_fanout.md.

    scripts/bench            # or: .venv/bin/python -m bench.exec_fanout --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fleetdeck_worker.sshlogin import SshOptions
from testbed.procs import SshFleet

from .cli import parser
from .harness import Result, fill, listing, run
from .measure import Context, spread
from .ssh_tools import CONCURRENCY, job_run
from .stack import Stack

NAME = "exec_fanout"
HOSTS = 100


async def fleetdeck_round(fleet: SshFleet, command: str) -> float:
    ssh = SshOptions(user="bench", port=fleet.port, key=fleet.key, known_hosts=fleet.known_hosts)
    run = await job_run(f"127.0.0.2-{HOSTS + 1}", HOSTS, command, ssh)
    started = time.perf_counter()
    await run.run()
    elapsed = time.perf_counter() - started
    if (ok := sum(1 for r in run.results if r.status == "ok")) != HOSTS:
        raise SystemExit(f"fleetdeck: only {ok}/{HOSTS} hosts succeeded")
    return elapsed


def clush_round(fleet: SshFleet, command: str) -> float:
    clush = shutil.which("clush", path=str(Path(sys.executable).parent)) or "clush"
    ssh_options = (
        f"-p {fleet.port} -i {fleet.key} -o UserKnownHostsFile={fleet.known_hosts} "
        "-o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ControlMaster=no -l bench"
    )
    argv = [clush, "-w", f"127.0.0.[2-{HOSTS + 1}]", "-f", str(CONCURRENCY), "-b", "-o", ssh_options, command]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"clush failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


OPTIONS = {"rounds": 5, "command": "true"}
HEAD = """One command (`{command}`) on {hosts} loopback SSH hosts, {concurrency} at a time, {rounds}
alternating rounds each; {context}."""
TABLE = (
    "tool | median | min | max | hosts/s (median)",
    "{tool} | {median:.2f} s | {min:.2f} s | {max:.2f} s | {rate:.0f}",
)
HOW = """fleetdeck runs the job through its worker's job runner (asyncssh, in-memory broker, results
grouped); ClusterShell runs `clush -b` over OpenSSH."""


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Each tool in turn on the same fleet, every round."""
    times: dict[str, list[float]] = {"fleetdeck": [], "ClusterShell clush": []}
    with Stack(tmp) as stack:
        fleet = stack.ssh_fleet(HOSTS)
        for _ in range(args.rounds):
            times["fleetdeck"].append(asyncio.run(fleetdeck_round(fleet, args.command)))
            times["ClusterShell clush"].append(clush_round(fleet, args.command))
    return {"hosts": HOSTS, "times": times}


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return {tool: spread(values) for tool, values in raw["times"].items()}


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> tuple[str, str]:
    figures = {**vars(args), "hosts": HOSTS, "concurrency": CONCURRENCY, "context": ctx.sentence()}
    rows = [spread | {"tool": tool, "rate": HOSTS / spread["median"]} for tool, spread in s.items()]
    short = fill(" ".join(HEAD.split()), figures) + "\n\n" + listing(*TABLE, rows)
    return " ".join(HOW.split()) + "\n\n" + short, short


def main() -> None:
    args = parser(__doc__, OPTIONS).parse_args()
    run(args, measure, summarize, render, Result(NAME, "Exec fan-out", "", {}), drop=())


if __name__ == "__main__":
    main()
