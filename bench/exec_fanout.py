"""Benchmark: one command on 100 loopback SSH hosts, fleetdeck's worker against ClusterShell's clush.

Both run in the same process tree, on the same SSH fleet (tests/support/sshfleet.py, asyncssh
servers on 127.0.0.2-101), 64 hosts at a time, with grouped output, alternating rounds. Results go
to bench/results.md and bench/results.json; the README quotes them.

    scripts/bench            # or: .venv/bin/python -m bench.exec_fanout --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import Job
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_worker.jobrun import JobRun
from fleetdeck_worker.sshlogin import SshOptions

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 100
CONCURRENCY = 64
TARGETS = f"127.0.0.2-{HOSTS + 1}"


def start_fleet(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = workdir / "id_ed25519"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    key.write_public_key(str(workdir / "id_ed25519.pub"))
    fleet = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.sshfleet",
            str(workdir),
            "--count",
            str(HOSTS),
            "--client-key",
            str(workdir / "id_ed25519.pub"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    ready = workdir / "ready.json"
    deadline = time.monotonic() + 30
    while not ready.exists():
        if time.monotonic() > deadline or fleet.poll() is not None:
            raise SystemExit("the SSH fleet did not start")
        time.sleep(0.05)
    return fleet, json.loads(ready.read_text())["port"], key_path, workdir / "known_hosts"


async def fleetdeck_round(port: int, key: Path, known_hosts: Path, command: str) -> float:
    broker = MemoryBroker()
    job = Job(
        job="bench", targets=TARGETS, command=command, hosts=HOSTS, by="bench", ts=time.time(), state="queued"
    )
    store = JobStore(broker)
    await store.announce(job)
    ssh = SshOptions(user="bench", port=port, key=key, known_hosts=known_hosts)
    policy = TargetPolicy.from_entries(["127.0.0.0/8"])
    run = JobRun(store, job, "bench-worker", policy, ssh, CONCURRENCY)
    started = time.perf_counter()
    await run.run()
    elapsed = time.perf_counter() - started
    ok = sum(1 for r in run.results if r.status == "ok")
    if ok != HOSTS:
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


def summarize(times: list[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "hosts_per_s": HOSTS / statistics.median(times),
    }


def write_results(results: dict[str, dict[str, float]], rounds: int, command: str) -> str:
    lines = [
        f"One command (`{command}`) on {HOSTS} loopback SSH hosts, {CONCURRENCY} at a time, "
        f"{rounds} alternating rounds each; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "| tool | median | min | max | hosts/s (median) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for tool, row in results.items():
        lines.append(
            f"| {tool} | {row['median_s']:.2f} s | {row['min_s']:.2f} s | {row['max_s']:.2f} s | "
            f"{row['hosts_per_s']:.0f} |"
        )
    table = "\n".join(lines)
    (ROOT / "bench" / "results.md").write_text(
        "# Benchmark results\n\nWritten by `bench/exec_fanout.py`; do not edit by hand.\n\n"
        "fleetdeck runs the job through its worker's job runner (asyncssh, in-memory broker, results "
        "grouped); ClusterShell runs `clush -b` over OpenSSH.\n\n" + table + "\n"
    )
    (ROOT / "bench" / "results.json").write_text(
        json.dumps(
            {
                "hosts": HOSTS,
                "concurrency": CONCURRENCY,
                "rounds": rounds,
                "command": command,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = re.sub(
        r"(<!-- bench:exec_fanout -->\n).*?(\n<!-- /bench -->)",
        lambda m: m.group(1) + table + m.group(2),
        text,
        flags=re.DOTALL,
    )
    readme.write_text(text)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--command", default="true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fleet, port, key, known_hosts = start_fleet(Path(tmp))
        try:
            times: dict[str, list[float]] = {"fleetdeck": [], "ClusterShell clush": []}
            for _ in range(args.rounds):
                times["fleetdeck"].append(asyncio.run(fleetdeck_round(port, key, known_hosts, args.command)))
                times["ClusterShell clush"].append(clush_round(port, key, known_hosts, args.command))
        finally:
            fleet.terminate()
            fleet.wait()
    print(write_results({tool: summarize(t) for tool, t in times.items()}, args.rounds, args.command))


if __name__ == "__main__":
    main()
