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
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed.opensshd import client_key, established, start_sshd
from testbed.procs import free_port, wait_until

from .harness import ROOT, Result, output_options, publish, recorded_args, rotations, table, verdict
from .measure import Context, spread
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


def start_hosts(workdir: Path, command: str) -> tuple[list[Any], Spec]:
    key, public = client_key(workdir / "client")
    port = free_port(FIRST, also=ADDRESSES)
    servers = []
    try:
        for address in ADDRESSES:
            host = workdir / "hosts" / address
            commands = workdir / "commands.jsonl"
            servers.append(
                start_sshd(host, address, public, commands, port, record=False, home=workdir / "home")
            )
    except BaseException:
        for server in servers:
            server.stop()
        raise
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("".join(server.known_hosts_line for server in servers))
    return servers, Spec(port, str(key), str(known_hosts), command, str(workdir))


def run_tool(tool: str, spec: Spec) -> list[Run]:
    """The tool's two runs, in a process of its own, once its connections are closed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ssh_tools", tool, json.dumps(asdict(spec))],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    wait_until(
        lambda: not any(established(a, spec.port) for a in ADDRESSES), 90, 0.1, f"{tool} to disconnect"
    )
    return [Run(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def seconds(row: dict[str, float]) -> str:
    return f"{row['median']:.2f} s ({row['min']:.2f}-{row['max']:.2f})"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("asyncssh", "parallel-ssh", "ansible-core"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    found["openssh"] = (sshd.stderr or sshd.stdout).split(",")[0].strip()
    return found


def report(
    results: dict[str, list[list[Run]]], args: argparse.Namespace, notes: list[str], ctx: Context
) -> Result:
    rows = []
    summary: dict[str, Any] = {}
    for tool, rounds in results.items():
        first, second = (spread([r[i].wall_s for r in rounds]) for i in (0, 1))
        ratio = statistics.median(r[1].wall_s / r[0].wall_s for r in rounds)
        cpu = [statistics.median(r[i].cpu_s for r in rounds) for i in (0, 1)]
        ok = all(r[0].statuses == r[1].statuses and set(r[0].statuses.values()) == {"ok"} for r in rounds)
        summary[tool] = {"first_s": first, "second_s": second, "ratio": ratio, "cpu_s": cpu, "all_ok": ok}
        cells = [seconds(first), seconds(second), f"{ratio:.2f}", f"{cpu[0]:.2f} s / {cpu[1]:.2f} s"]
        rows.append([LABELS[tool], *cells, "yes" if ok else "**no**"])
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
    body = (
        f"`{args.command}` on {HOSTS} OpenSSH hosts (64 sshd on 127.0.4.1-{HOSTS}), {CONCURRENCY} at a time, "
        f"twice in a row per tool, {args.rounds} rounds in a rotating order; {ctx.sentence()}; "
        + ", ".join(f"{k} {v}" for k, v in found.items())
        + f".\n\n{table(header, rows)}\n{target}\nCPU is the tool's process (user + system) during "
        "each run; Ansible's includes the ssh processes it waited for, not its persisting ssh masters.\n"
        + "".join(f"\n{note}\n" for note in notes)
    )
    data = {"context": ctx.__dict__, "args": recorded_args(args), "versions": found, "summary": summary}
    data |= {
        "rounds": {tool: [[asdict(run) for run in r] for r in rounds] for tool, rounds in results.items()}
    }
    return Result(NAME, "SSH connection reuse", body, data | {"notes": notes})


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
    results: dict[str, list[list[Run]]] = {tool: [] for tool in tools}
    ctx = Context.now()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-ssh-reuse-") as tmp:
        servers, spec = start_hosts(Path(tmp), args.command)
        try:
            for number, tool in rotations(tools, args.rounds):
                results[tool].append(runs := run_tool(tool, spec))
                print(f"round {number + 1} {tool}: {runs[0].wall_s:.2f} s, then {runs[1].wall_s:.2f} s")
        finally:
            for server in servers:
                server.stop()
    publish(args, report(results, args, notes, ctx.finished()))


if __name__ == "__main__":
    main()
