"""Benchmark: the same command twice on 64 OpenSSH hosts, fleetdeck's runner keeping its connections
against parallel-ssh, bare asyncssh and (where it is installed) Ansible, in one run.

What it measures and how: docs/benchmarks.md. Its summary: bench/ssh_reuse.md
(raw figures in bench/results/).

    .venv/bin/python -m bench.ssh_reuse --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed.opensshd import client_key, established, start_sshd
from testbed.procs import free_port, wait_until

from . import ssh_tools
from .cli import parser
from .harness import Result, fill, listing, rotations, run
from .measure import Context, spread
from .ssh_tools import ADDRESSES, CONCURRENCY, FIRST, HOSTS, Run, Spec, ansible_binary
from .stack import Stack

NAME = "ssh_reuse"
TARGET_RATIO = 0.3
TOOLS = ("fleetdeck", "parallel-ssh", "asyncssh", "ansible")
LABELS = {
    "fleetdeck": "fleetdeck (JobRun + SshPool)",
    "parallel-ssh": "parallel-ssh (one client)",
    "asyncssh": "bare asyncssh (new connection per run)",
    "ansible": "Ansible `-m raw` (ControlPersist 60s)",
}
HEAD = """`{command}` on {hosts} OpenSSH hosts ({hosts} sshd on 127.0.4.1-{hosts}), {concurrency} at a time,
twice in a row per tool, {rounds} rounds in a rotating order: median [min, max], medians of the
ratio and CPU; {context}; {versions}."""
TABLE = (
    "tool | first run, s | second run, s | second / first | CPU first / second | every host ok",
    "{label} | {first_s:.2f} | {second_s:.2f} | {ratio:.2f} | {cpu_s[0]:.2f} s / {cpu_s[1]:.2f} s | {ok}",
)
TARGET = """Target: fleetdeck's second run at most {limit}x its first, same statuses: {met:met}
({ratio:.2f}x)."""
CPU = """CPU is the tool's process (user + system) during each run; Ansible's includes the ssh processes
it waited for, not its persisting ssh masters."""


def start_hosts(stack: Stack, workdir: Path, command: str) -> Spec:
    """An sshd on each address, stopped with the stack, and what the tools need to reach them."""
    key, public = client_key(workdir / "client")
    port = free_port(FIRST, also=ADDRESSES)
    known_hosts = workdir / "known_hosts"
    for address in ADDRESSES:
        host, commands = workdir / "hosts" / address, workdir / "commands.jsonl"
        server = start_sshd(host, address, public, commands, port, record=False, home=workdir / "home")
        stack.callback(server.stop)
        with known_hosts.open("a") as known:
            known.write(server.known_hosts_line)
    return Spec(port, str(key), str(known_hosts), command, str(workdir))


def run_tool(tool: str, spec: Spec) -> list[Run]:
    """The tool's two runs, in a process of its own, once its connections are closed."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        runs = process.submit(ssh_tools.run, tool, spec).result(timeout=900)
    wait_until(
        lambda: not any(established(a, spec.port) for a in ADDRESSES), 90, 0.1, f"{tool} to disconnect"
    )
    return runs


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("asyncssh", "parallel-ssh", "ansible-core"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    found["openssh"] = (sshd.stderr or sshd.stdout).split(",")[0].strip()
    return found


def sum_up(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """One tool's rounds: each run's wall time, the second's share of the first, CPU, statuses."""
    ok = all(
        r[0]["statuses"] == r[1]["statuses"] and set(r[0]["statuses"].values()) == {"ok"} for r in rounds
    )
    return {
        "first_s": spread([r[0]["wall_s"] for r in rounds]),
        "second_s": spread([r[1]["wall_s"] for r in rounds]),
        "ratio": statistics.median(r[1]["wall_s"] / r[0]["wall_s"] for r in rounds),
        "cpu_s": [statistics.median(r[i]["cpu_s"] for r in rounds) for i in (0, 1)],
        "all_ok": ok,
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return {tool: sum_up(rounds) for tool, rounds in raw["rounds"].items()}


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every tool twice in a row, each round in a rotating order; the versions measured."""
    tools, notes = [t for t in args.tools.split(",") if t], []
    if "ansible" in tools and ansible_binary() is None:
        tools.remove("ansible")
        notes.append("Ansible is not installed here (`pip install ansible-core`), so it was left out.")
    rounds: dict[str, list[list[dict[str, Any]]]] = {tool: [] for tool in tools}
    with Stack(tmp) as stack:
        spec = start_hosts(stack, tmp, args.command)
        for number, tool in rotations(tools, args.rounds):
            rounds[tool].append([asdict(run) for run in run_tool(tool, spec)])
            print(
                f"round {number + 1} {tool}: "
                + ", then ".join(f"{r['wall_s']:.2f} s" for r in rounds[tool][-1])
            )
    return {"versions": versions(), "rounds": rounds, "notes": notes}


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    figures = {**vars(args), "hosts": HOSTS, "concurrency": CONCURRENCY, "context": ctx.sentence()}
    figures["versions"] = ", ".join(f"{k} {v}" for k, v in raw["versions"].items())
    rows = [s | {"label": LABELS[tool], "ok": "yes" if s["all_ok"] else "**no**"} for tool, s in s.items()]
    parts = [fill(" ".join(HEAD.split()), figures), listing(*TABLE, rows)]
    if fleetdeck := s.get("fleetdeck"):
        met = fleetdeck["ratio"] <= TARGET_RATIO and fleetdeck["all_ok"]
        parts.append(fill(" ".join(TARGET.split()), fleetdeck | {"limit": TARGET_RATIO, "met": met}))
    return "\n\n".join([*parts, " ".join(CPU.split()), *raw["notes"]])


def main() -> None:
    options = {"rounds": 3, "command": "true", "tools": ",".join(TOOLS)}
    args = parser(__doc__ or "", options, {"tools": "comma list of " + ", ".join(TOOLS)}).parse_args()
    run(args, measure, summarize, render, Result(NAME, "SSH connection reuse", "", {}), drop=())


if __name__ == "__main__":
    main()
