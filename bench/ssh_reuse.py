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
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed.opensshd import client_key, established, start_sshd
from testbed.procs import free_port, wait_until

from . import ssh_tools
from .harness import Result, fill, listing, output_options, publish, record, rotations
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


def sum_up(rounds: list[list[Run]]) -> dict[str, Any]:
    """One tool's rounds: each run's wall time, the second's share of the first, CPU, statuses."""
    ok = all(r[0].statuses == r[1].statuses and set(r[0].statuses.values()) == {"ok"} for r in rounds)
    return {
        "first_s": spread([r[0].wall_s for r in rounds]),
        "second_s": spread([r[1].wall_s for r in rounds]),
        "ratio": statistics.median(r[1].wall_s / r[0].wall_s for r in rounds),
        "cpu_s": [statistics.median(r[i].cpu_s for r in rounds) for i in (0, 1)],
        "all_ok": ok,
    }


def report(
    results: dict[str, list[list[Run]]], args: argparse.Namespace, notes: list[str], ctx: Context
) -> Result:
    summary = {tool: sum_up(rounds) for tool, rounds in results.items()}
    found = versions()
    figures = {**vars(args), "hosts": HOSTS, "concurrency": CONCURRENCY, "context": ctx.sentence()}
    figures["versions"] = ", ".join(f"{k} {v}" for k, v in found.items())
    rows = [
        s | {"label": LABELS[tool], "ok": "yes" if s["all_ok"] else "**no**"} for tool, s in summary.items()
    ]
    parts = [fill(" ".join(HEAD.split()), figures), listing(*TABLE, rows)]
    if fleetdeck := summary.get("fleetdeck"):
        met = fleetdeck["ratio"] <= TARGET_RATIO and fleetdeck["all_ok"]
        parts.append(fill(" ".join(TARGET.split()), fleetdeck | {"limit": TARGET_RATIO, "met": met}))
    runs = {tool: [[asdict(run) for run in r] for r in rounds] for tool, rounds in results.items()}
    data = record(ctx, args, summary, {"versions": found, "rounds": runs}, drop=())
    return Result(NAME, "SSH connection reuse", "\n\n".join([*parts, " ".join(CPU.split()), *notes]), data)


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
    with tempfile.TemporaryDirectory(prefix="fleetdeck-ssh-reuse-") as tmp, Stack(Path(tmp)) as stack:
        spec = start_hosts(stack, Path(tmp), args.command)
        for number, tool in rotations(tools, args.rounds):
            results[tool].append(runs := run_tool(tool, spec))
            print(f"round {number + 1} {tool}: {runs[0].wall_s:.2f} s, then {runs[1].wall_s:.2f} s")
    publish(args, report(results, args, notes, ctx.finished()))


if __name__ == "__main__":
    main()
