"""Benchmark: the same command twice on 64 OpenSSH hosts, fleetdeck's runner keeping its connections
against parallel-ssh, bare asyncssh and (where it is installed) Ansible, in one run.

What it measures and how: docs/benchmarks.md. Its summary: bench/ssh_reuse.md
(raw figures in bench/results/).

    .venv/bin/python -m bench.ssh_reuse --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed.opensshd import client_key, established, start_sshd
from testbed.procs import free_port, wait_until

from .harness import ROOT, Result, output_options, publish, table, verdict
from .measure import spread
from .ssh_tools import ADDRESSES, CONCURRENCY, FIRST, HOSTS, Run, Spec, ansible_binary

NAME = "ssh_reuse"
TARGET_RATIO = 0.3
TOOLS = ("fleetdeck", "parallel-ssh", "asyncssh", "ansible")
LABELS = {
    "fleetdeck": "fleetdeck (JobRun + SshPool)",
    "parallel-ssh": "parallel-ssh (one client)",
    "asyncssh": "bare asyncssh (new connection per run)",
    "ansible": "Ansible `-m raw` (ControlPersist 60s)",
}


def start_hosts(workdir: Path) -> tuple[list[Any], Spec]:
    key, public = client_key(workdir / "client")
    port = free_port(FIRST, also=ADDRESSES)
    servers = []
    try:
        for address in ADDRESSES:
            host = workdir / "hosts" / address
            servers.append(
                start_sshd(
                    host,
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
        [sys.executable, "-m", "bench.ssh_tools", tool, json.dumps(asdict(spec))],
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
    wait_until(
        lambda: not any(established(a, spec.port) for a in ADDRESSES),
        90,
        0.1,
        f"{tool}'s connections to close",
    )
    return runs, total


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


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
        rows.append([LABELS[tool], seconds(first), seconds(second), f"{ratio:.2f}", cpu_cell, yes(same)])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--command", default="true")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma list of " + ", ".join(TOOLS))
    output_options(parser)
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    notes = []
    if "ansible" in tools and ansible_binary() is None:
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
                    walls = f"first {runs[0].wall_s:.2f} s, second {runs[1].wall_s:.2f} s"
                    print(f"round {number + 1} {tool}: {walls}", file=sys.stderr)
        finally:
            for server in servers:
                server.stop()
    publish(args, report(results, args.rounds, args.command, notes, load_before))


if __name__ == "__main__":
    main()
