"""Benchmark: what signing jobs costs in exec wall time, signed against unsigned in the same run.

Two stacks (Redis, gateway, worker), one holding the job key, exec on one loopback SSH fleet in
alternating rounds; then timeit of `signing.sign` and `signing.verify`. docs/benchmarks.md says
more; the summary is bench/job_signing.md.

    scripts/bench job_signing     # or: .venv/bin/python -m bench.job_signing --hosts 200 --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import time
import timeit
import uuid
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple

from websockets.asyncio.client import ClientConnection, connect

from fleetdeck_common.broker import create_broker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.jobs.signing import as_queued, canonical, load_job_key, sign, verify
from testbed.procs import BIN, Gateway, Service, SshFleet

from . import harness
from .measure import CpuWindow, cpu_seconds
from .stack import Stack, make_token
from .summaries.job_signing import NAME, TITLE, render, summarize

FIRST = "127.0.10.1"  # the fleet's first address; loopback only
VARIANTS = ("signed", "unsigned")


class Side(NamedTuple):
    """One stack of the comparison: its Redis URL, gateway and worker."""

    redis_url: str
    redis_pid: int
    gateway: Gateway
    worker: Service


def fleet_targets(hosts: int) -> str:
    """The fleet's addresses as a target expression, one range per /24."""
    first = ipaddress.IPv4Address(FIRST)
    addresses = [first + i for i in range(hosts)]
    ranges = []
    for prefix, group in groupby(addresses, key=lambda a: str(a).rsplit(".", 1)[0]):
        last_octets = [int(str(a).rsplit(".", 1)[1]) for a in group]
        ranges.append(f"{prefix}.{last_octets[0]}-{last_octets[-1]}")
    return ",".join(ranges)


def worker_ssh_env(fleet: SshFleet) -> dict[str, str]:
    """The worker settings that reach the SSH fleet."""
    return {
        "FLEETDECK_SSH_KEY": str(fleet.key),
        "FLEETDECK_KNOWN_HOSTS": str(fleet.known_hosts),
        "FLEETDECK_SSH_PORT": str(fleet.port),
        "FLEETDECK_SSH_USER": "bench",
        "FLEETDECK_SSH_CONNECT_TIMEOUT": "30",  # room for a thousand handshakes on a busy machine
        "FLEETDECK_ALLOWED_TARGETS": "127.0.0.0/8",
    }


def start_side(stack: Stack, variant: str, ssh_env: dict[str, str], tokens: Path, key: Path) -> Side:
    """A Redis, a worker and a gateway; both services hold the job key when `variant` is signed."""
    redis = stack.redis()
    keyed = {"FLEETDECK_JOB_KEY_FILE": str(key)} if variant == "signed" else {}
    quiet = {"FLEETDECK_LOG_LEVEL": "WARNING"}
    worker_env = {"REDIS_URL": redis.url, "FLEETDECK_WORKER_NAME": f"bench-{variant}", **ssh_env}
    worker = stack.service(f"worker-{variant}", [str(BIN / "fleetdeck-worker")], worker_env | keyed | quiet)
    gateway = stack.gateway(redis.url, tokens, f"gateway-{variant}", **keyed, **quiet)
    assert redis.service is not None
    return Side(redis.url, redis.service.pid, gateway, worker)


async def operator(gateway: Gateway, token: str) -> ClientConnection:
    """An operator's WebSocket, past its `hello`."""
    ws = await connect(
        gateway.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=64 * 1024 * 1024
    )
    await frame_where(ws, lambda f: f.get("type") == "hello", 30)
    return ws


async def frame_where(ws: ClientConnection, check: Any, timeout: float) -> dict[str, Any]:
    """The next frame that passes `check`, skipping the others."""

    async def wait() -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if check(frame):
                return frame

    return await asyncio.wait_for(wait(), timeout)


async def exec_round(
    ws: ClientConnection, side: Side, targets: str, hosts: int, command: str
) -> dict[str, Any]:
    """One exec, timed from sending it to its `done`, with the gateway's and worker's CPU over it."""
    ref = uuid.uuid4().hex[:8]
    pids = (side.gateway.service.pid, side.worker.pid)
    cpu_before = [cpu_seconds(p) for p in pids]
    started = time.perf_counter()
    await ws.send(
        json.dumps({"type": "exec", "targets": targets, "command": command, "timeout": 60, "ref": ref})
    )
    job = await frame_where(ws, lambda f: f.get("ref") == ref, 60)
    if job.get("type") != "job":
        raise SystemExit(f"the gateway did not take the job: {job}")
    done = await frame_where(ws, lambda f: f.get("type") == "done" and f.get("job") == job["job"], 600)
    wall = time.perf_counter() - started
    gateway_cpu, worker_cpu = (cpu_seconds(p) - before for p, before in zip(pids, cpu_before, strict=True))
    if done["summary"].get("ok", 0) != hosts:
        raise SystemExit(f"not every host ran `{command}`: {done['summary']} {done.get('error') or ''}")
    return {
        "job": job["job"],
        "wall_s": wall,
        "duration_ms": done["duration_ms"],
        "gateway_cpu_s": gateway_cpu,
        "worker_cpu_s": worker_cpu,
    }


async def rounds(
    sides: dict[str, Side], token: str, ours: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """A warm-up exec on each side, then --rounds on each, alternating which side goes first;
    `ours`: the run's processes, whose CPU is not the rest of the machine's."""
    targets = fleet_targets(args.hosts)
    sockets = {variant: await operator(side.gateway, token) for variant, side in sides.items()}
    try:
        for variant in VARIANTS:
            await exec_round(sockets[variant], sides[variant], targets, args.hosts, args.command)
        machine = CpuWindow(ours)
        started = time.monotonic()
        measured: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
        for number, variant in harness.rotations(VARIANTS, args.rounds):
            one = await exec_round(sockets[variant], sides[variant], targets, args.hosts, args.command)
            measured[variant].append(one | {"round": number})
        window = time.monotonic() - started
    finally:
        for ws in sockets.values():
            await ws.close()
    return {
        "targets": targets,
        "rounds": measured,
        "window_s": window,
        "others_cpu_pct": machine.others() / window * 100,
    }


async def queued_job(redis_url: str, job_id: str) -> Any:
    """The job as the signed gateway queued it (the record the worker verifies)."""
    async with create_broker(redis_url) as broker:
        job = await JobStore(broker).load(job_id)
    if job is None:
        raise SystemExit(f"job {job_id} is not in the signed side's store")
    return job


def micro_costs(key_path: Path, redis_url: str, job_id: str, number: int) -> dict[str, Any]:
    """Best-of-five timeit, in µs per call, of signing a real queued job and of verifying it as the
    worker does (`verify(key, as_queued(job), signature)`)."""
    key = load_job_key(key_path)
    job = asyncio.run(queued_job(redis_url, job_id))
    queued = as_queued(job)
    signature = sign(key, queued)

    def best(statement: Any) -> float:
        return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6

    return {
        "canonical_bytes": len(canonical(queued)),
        "sign_us": best(lambda: sign(key, queued)),
        "verify_us": best(lambda: verify(key, as_queued(job), signature)),
        "calls": number,
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start the fleet and both sides, time the rounds, then the sign and verify calls."""
    with Stack(tmp) as stack:
        fleet = stack.ssh_fleet(args.hosts, FIRST)
        ssh_env = worker_ssh_env(fleet)
        tokens = tmp / "tokens.txt"
        token = make_token(tokens, role="operator")
        key = tmp / "job.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        sides = {variant: start_side(stack, variant, ssh_env, tokens, key) for variant in VARIANTS}
        ours = [os.getpid(), fleet.service.pid]
        ours += [
            p for side in sides.values() for p in (side.redis_pid, side.gateway.service.pid, side.worker.pid)
        ]
        raw = asyncio.run(rounds(sides, token, ours, args))
        last = raw["rounds"]["signed"][-1]["job"]
        raw["micro"] = micro_costs(key, sides["signed"].redis_url, last, args.calls)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or NAME).splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000, help="loopback SSH hosts (at most 1,024)")
    parser.add_argument("--rounds", type=int, default=8, help="timed execs on each side")
    parser.add_argument("--command", default="true")
    parser.add_argument("--calls", type=int, default=2000, help="timeit calls per repeat")
    harness.common_options(parser)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 1024:
        parser.error("--hosts is 1 to 1,024 (a worker's default host cap)")
    harness.run(
        args, measure, summarize, render, harness.Result(NAME, TITLE, "", {}), needed_fds=4 * args.hosts
    )


if __name__ == "__main__":
    main()
