"""Benchmark: one file copied to 64 OpenSSH hosts on loopback by fleetdeck's worker (SFTP, a
temporary name renamed into place) against ClusterShell's `clush --copy` and parallel-ssh's
`copy_file`, in one run: wall time and the tool's CPU.

What it measures and how: docs/benchmarks.md. Its summary: bench/copy.md (raw figures in
bench/results/).

    .venv/bin/python -m bench.copy --rounds 3 --size-mib 10
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from testbed.opensshd import established
from testbed.procs import wait_until

from . import copy_tools
from .copy_tools import CopyRun, CopySpec
from .harness import Result, fill, listing, output_options, publish, recorded_args, rotations
from .measure import Context, spread
from .ssh_reuse import start_hosts
from .ssh_tools import ADDRESSES, CONCURRENCY, HOSTS
from .stack import Stack

NAME = "copy"
TOOLS = ("fleetdeck", "clush", "parallel-ssh")
LABELS = {
    "fleetdeck": "fleetdeck (worker's SFTP copy, temporary name + rename)",
    "clush": "ClusterShell `clush --copy` (scp)",
    "parallel-ssh": "parallel-ssh `copy_file` (SFTP)",
}
HEAD = """A {size_mib} MiB file to {hosts} OpenSSH hosts ({hosts} sshd on 127.0.4.1-{hosts}, one file
system: every host writes the same path, in a tmpfs), {concurrency} at a time, each tool in a process
of its own with new connections, {rounds} rounds in a rotating order: median [min, max];
{context}; {versions}."""
TABLE = (
    "tool | wall time, s | CPU of the tool, s | every host ok, file intact",
    "{label} | {wall_s:.2f} | {cpu:.2f} | {ok}",
)
TARGET = """Target: fleetdeck's wall time at most the fastest peer's ({peer}, {peer_s:.2f} s, medians):
{met:met} ({wall:.2f} s); its CPU {cpu:.2f} s against {peer_cpu:.2f} s."""
NOTES = """CPU is the tool's process (user + system) and the children it waited for (clush's scp and ssh).
The hosts' sshd work is not counted. clush and parallel-ssh write the destination in place;
fleetdeck writes each host's own temporary file beside it, checks its size and renames it, so it
writes {hosts} files where the others overwrite one."""


def run_tool(tool: str, spec: CopySpec) -> CopyRun:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        result = process.submit(copy_tools.run, tool, spec).result(timeout=900)
    wait_until(
        lambda: not any(established(a, spec.port) for a in ADDRESSES), 90, 0.1, f"{tool} to disconnect"
    )
    return result


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("asyncssh", "ClusterShell", "parallel-ssh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def report(results: dict[str, list[CopyRun]], args: argparse.Namespace, ctx: Context) -> Result:
    summary: dict[str, dict[str, Any]] = {
        tool: {
            "wall_s": spread([r.wall_s for r in runs]),
            "cpu": statistics.median(r.cpu_s for r in runs),
            "all_ok": all(set(r.statuses.values()) == {"ok"} for r in runs),
        }
        for tool, runs in results.items()
    }
    found = versions()
    figures = {**vars(args), "hosts": HOSTS, "concurrency": CONCURRENCY, "context": ctx.sentence()}
    figures["versions"] = ", ".join(f"{k} {v}" for k, v in found.items())
    rows = [
        s | {"label": LABELS[tool], "ok": "yes" if s["all_ok"] else "**no**"} for tool, s in summary.items()
    ]
    parts = [fill(" ".join(HEAD.split()), figures), listing(*TABLE, rows)]
    peers = {t: s for t, s in summary.items() if t != "fleetdeck" and s["all_ok"]}
    if (ours := summary.get("fleetdeck")) and peers:
        peer = min(peers, key=lambda t: peers[t]["wall_s"]["median"])
        wall, peer_s = ours["wall_s"]["median"], peers[peer]["wall_s"]["median"]
        met = wall <= peer_s and ours["all_ok"]
        verdict = {"peer": LABELS[peer].split(" (")[0], "peer_s": peer_s, "wall": wall, "met": met}
        verdict |= {"cpu": ours["cpu"], "peer_cpu": peers[peer]["cpu"]}
        parts.append(fill(" ".join(TARGET.split()), verdict))
    parts.append(fill(" ".join(NOTES.split()), figures))
    data = {"context": ctx.__dict__, "args": recorded_args(args), "versions": found, "summary": summary}
    data |= {"rounds": {tool: [asdict(r) for r in runs] for tool, runs in results.items()}}
    return Result(NAME, "File copy", "\n\n".join(parts), data)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=10)
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma list of " + ", ".join(TOOLS))
    output_options(parser)
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    clush = shutil.which("clush", path=str(Path(sys.executable).parent)) or shutil.which("clush") or ""
    if "clush" in tools and not clush:
        parser.error("clush is not installed here (pip install -c constraints.txt ClusterShell)")
    results: dict[str, list[CopyRun]] = {tool: [] for tool in tools}
    ctx = Context.now()
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="fleetdeck-copy-") as tmp,
        tempfile.TemporaryDirectory(prefix="fleetdeck-copy-", dir=shm if shm.is_dir() else None) as out,
        Stack(Path(tmp)) as stack,
    ):
        hosts = start_hosts(stack, Path(tmp), "true")
        source = Path(tmp) / "payload.bin"
        source.write_bytes(os.urandom(args.size_mib * 1024 * 1024))
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        dest = Path(out) / "payload.bin"
        spec = CopySpec(hosts.port, hosts.key, hosts.known_hosts, str(source), str(dest), clush)
        for number, tool in rotations(tools, args.rounds):
            dest.unlink(missing_ok=True)
            result = run_tool(tool, spec)
            intact = dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == digest
            leftovers = [p.name for p in Path(out).iterdir() if p != dest]
            if not intact or leftovers:
                result.statuses["(file)"] = f"intact {intact}, left behind {leftovers[:3]}"
            results[tool].append(result)
            bad = {h: s for h, s in result.statuses.items() if s != "ok"}
            took = f"{result.wall_s:.2f} s, CPU {result.cpu_s:.2f} s"
            print(f"round {number + 1} {tool}: {took}, not ok {bad or 0}")
    publish(args, report(results, args, ctx.finished()))


if __name__ == "__main__":
    main()
