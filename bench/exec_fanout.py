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
import tempfile
import time
from pathlib import Path

from fleetdeck_worker.sshlogin import SshOptions
from testbed.procs import SshFleet

from .harness import Result, fill, listing, output_options, publish, record
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


HEAD = """One command (`{command}`) on {hosts} loopback SSH hosts, {concurrency} at a time, {rounds}
alternating rounds each; {context}."""
TABLE = (
    "tool | median | min | max | hosts/s (median)",
    "{tool} | {median:.2f} s | {min:.2f} s | {max:.2f} s | {rate:.0f}",
)
HOW = """fleetdeck runs the job through its worker's job runner (asyncssh, in-memory broker, results
grouped); ClusterShell runs `clush -b` over OpenSSH."""


def render(times: dict[str, list[float]], args: argparse.Namespace, ctx: Context) -> Result:
    summary = {tool: spread(values) for tool, values in times.items()}
    figures = {**vars(args), "hosts": HOSTS, "concurrency": CONCURRENCY, "context": ctx.sentence()}
    rows = [s | {"tool": tool, "rate": HOSTS / s["median"]} for tool, s in summary.items()]
    short = fill(" ".join(HEAD.split()), figures) + "\n\n" + listing(*TABLE, rows)
    data = record(ctx, args, summary, {"hosts": HOSTS, "times": times}, drop=())
    return Result(
        NAME, "Exec fan-out", " ".join(HOW.split()) + "\n\n" + short, data, quoted=short, short=short
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--command", default="true")
    output_options(parser)
    args = parser.parse_args()
    ctx = Context.now()
    times: dict[str, list[float]] = {"fleetdeck": [], "ClusterShell clush": []}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp, Stack(Path(tmp)) as stack:
        fleet = stack.ssh_fleet(HOSTS)
        for _ in range(args.rounds):
            times["fleetdeck"].append(asyncio.run(fleetdeck_round(fleet, args.command)))
            times["ClusterShell clush"].append(clush_round(fleet, args.command))
    publish(args, render(times, args, ctx.finished()))


if __name__ == "__main__":
    main()
