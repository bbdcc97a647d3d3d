"""Benchmark: what taking in a fleet's samples costs a gateway with no client at all.

One redis-server on 127.0.0.1 and a simulated fleet of 10,000 hosts at 1 Hz run throughout: by
default what `fleetdeck-agent --simulate N` sends, replayed every second (`ingest_replay.py`: on
a busy 2-core machine the agent itself falls far short of 10,000 samples a second), or with
`--publisher agent` the agent itself. Gateways come and go, one at a time, in rounds that rotate
the order of the variants: `hiredis` (the gateway as installed: redis-py with the hiredis reply
parser) and `pure-python` (the same gateway with hiredis hidden from redis-py, so it parses
replies in Python). Each round waits for the gateway's /readyz and --settle seconds, then reads
its CPU time over a window (/proc) and Redis's INFO commandstats (samples/s from the PUBLISH
calls, which count the summaries too: one per 200 samples). The gateway is pinned to core 0,
Redis and the fleet to core 1 (unless --no-pin). Writes bench/gateway_ingest.md.

    scripts/bench gateway_ingest    # or: .venv/bin/python -m bench.gateway_ingest --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from testbed.procs import Service, free_port, service_env, wait_until

from . import harness
from .measure import Context, CpuWindow, cpu_seconds, spread
from .stack import Stack

NAME = "gateway_ingest"
TITLE = "Gateway ingest: 10,000 simulated hosts and no client"
PUBLISHERS = ("replay", "agent")
DEFAULTS = {"hosts": 10000, "rounds": 2, "seconds": 20.0, "publisher": PUBLISHERS}
# The gateway's own entry point, with hiredis made unimportable first: redis-py then picks its
# pure-Python parser, exactly as on an install without hiredis.
_NO_HIREDIS = "import sys; sys.modules['hiredis'] = None; from fleetdeck_gateway.__main__ import main; main()"
VARIANTS = {
    "hiredis": [str(Path(sys.executable).parent / "fleetdeck-gateway")],
    "pure-python": [sys.executable, "-c", _NO_HIREDIS],
}
FIGURES = ("gateway_cpu_pct", "samples_s", "gateway_us_per_sample", "redis_cpu_pct")


def publishes(admin: redis.Redis) -> int:
    """PUBLISH calls so far (INFO commandstats)."""
    stats = admin.info("commandstats").get("cmdstat_publish", {})
    return int(stats.get("calls", 0))


def start_fleet(stack: Stack, url: str, args: argparse.Namespace) -> Service:
    """The simulated fleet, once its first round of samples is out."""
    if args.publisher == "agent":
        agent = stack.simulated_fleet(url, args.hosts)
        health = stack.workdir / f"agent-{args.hosts}.health"
        wait_until(health.exists, 120, interval=0.1, what="the agent's first tick")
        return agent
    argv = [sys.executable, "-m", "bench.ingest_replay", "--redis", url, "--hosts", str(args.hosts)]
    replay = stack.service("replay", argv, {"PYTHONPATH": str(harness.ROOT)})
    wait_until(lambda: "replaying" in replay.log(), 120, interval=0.1, what="the first replayed round")
    return replay


def one_round(
    stack: Stack, variant: str, url: str, args: argparse.Namespace, admin: redis.Redis, redis_pid: int
) -> dict[str, Any]:
    """One gateway of `variant`: ready, settled, then its CPU over a window of --seconds."""
    port = free_port()
    env = service_env(url, FLEETDECK_HOST="127.0.0.1", FLEETDECK_LOG_LEVEL="WARNING")
    gateway = Service(f"gateway-{variant}", [*VARIANTS[variant], "--port", str(port)], env, stack.workdir)
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        wait_until(lambda: httpx.get(ready, timeout=1).status_code == 200, 60, what=f"{variant} gateway")
        harness.pin(args, [gateway.pid])  # its threads are all started once it is ready
        time.sleep(args.settle)
        before = (cpu_seconds(gateway.pid), cpu_seconds(redis_pid), publishes(admin), time.monotonic())
        time.sleep(args.seconds)
        after = (cpu_seconds(gateway.pid), cpu_seconds(redis_pid), publishes(admin), time.monotonic())
        total = cpu_seconds(gateway.pid)  # its start too: not the rest of the machine
    finally:
        gateway.stop()
    wall = after[3] - before[3]
    samples = after[2] - before[2]
    return {
        "window_s": wall,
        "gateway_cpu_pct": (after[0] - before[0]) / wall * 100,
        "redis_cpu_pct": (after[1] - before[1]) / wall * 100,
        "samples_s": samples / wall,
        "gateway_us_per_sample": (after[0] - before[0]) * 1e6 / max(1, samples),
        "gateway_total_cpu_s": total,
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Redis and the simulated fleet, then --rounds of each variant, the order rotating each round."""
    with Stack(tmp) as stack:
        server = stack.redis()
        assert server.service is not None
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        stack.callback(admin.close)
        agent = start_fleet(stack, server.url, args)
        harness.pin(args, [], [server.service.pid, agent.pid])
        machine, started = CpuWindow([os.getpid(), server.service.pid, agent.pid]), time.monotonic()
        agent_before = cpu_seconds(agent.pid)
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for number, variant in harness.rotations(list(VARIANTS), args.rounds):
            one = one_round(stack, variant, server.url, args, admin, server.service.pid)
            rounds[variant].append(one | {"round": number})
        window = time.monotonic() - started
        agent_cpu = (cpu_seconds(agent.pid) - agent_before) / window * 100
    # The gateways come and go, so CpuWindow counts them with the rest of the machine: take them out.
    gateways = sum(r["gateway_total_cpu_s"] for runs in rounds.values() for r in runs)
    return {
        "rounds": rounds,
        "window_s": window,
        "agent_cpu_pct": agent_cpu,
        "others_cpu_pct": max(0.0, machine.others() - gateways) / window * 100,
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    per = {v: {k: spread([r[k] for r in runs]) for k in FIGURES} for v, runs in raw["rounds"].items()}
    return {"sides": per, **{k: raw[k] for k in ("others_cpu_pct", "window_s", "agent_cpu_pct")}}


def _cell(figure: dict[str, float], unit: str = "", digits: int = 0) -> str:
    return f"{figure['median']:,.{digits}f}{unit} ({figure['min']:,.{digits}f}-{figure['max']:,.{digits}f})"


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    rows = [
        [
            variant,
            _cell(side["gateway_cpu_pct"], "%", 1),
            _cell(side["samples_s"]),
            _cell(side["gateway_us_per_sample"], " µs", 1),
            _cell(side["redis_cpu_pct"], "%", 1),
        ]
        for variant, side in s["sides"].items()
    ]
    header = ("gateway", "gateway CPU", "samples/s", "gateway CPU per sample", "Redis CPU")
    pinned = "nothing pinned" if args.no_pin else "gateway pinned to core 0, Redis and the fleet to core 1"
    fleet = "replayed every second" if args.publisher == "replay" else "the agent itself"
    return (
        f"`fleetdeck-agent --simulate {args.hosts:,}` ({fleet}; 1 Hz, 200 hosts a round trip) into one "
        f"redis-server on 127.0.0.1, one gateway at a time with no client, {args.rounds} rounds of "
        f"{args.seconds:g} s per variant after {args.settle:g} s to settle, the order rotating each "
        f"round; {pinned}. `hiredis`: the gateway as installed; `pure-python`: the same with hiredis "
        "hidden from redis-py. Median (min-max) over the rounds; CPU in % of one core (CPU time / "
        f"wall, /proc). {ctx.sentence()}.\n\n"
        f"{harness.table(header, rows)}\n\n"
        f"The fleet's publisher used {s['agent_cpu_pct']:.0f}% of a core; the rest of the machine "
        f"{s['others_cpu_pct']:.0f}% over the {s['window_s']:.0f} s of rounds. An agent that cannot "
        "keep up publishes fewer samples a second than it has hosts; the per-sample figures compare "
        "the variants either way.\n\n"
        f"Reproduce: `{harness.reproduce(NAME, args, DEFAULTS)}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or NAME).splitlines()[0])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"], help="simulated hosts, one agent")
    parser.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="rounds of each variant")
    parser.add_argument("--seconds", type=float, default=DEFAULTS["seconds"], help="each round's window")
    parser.add_argument(
        "--publisher", choices=PUBLISHERS, default=PUBLISHERS[0], help="what publishes the fleet"
    )
    harness.common_options(parser, settle=5)
    args = parser.parse_args()
    harness.run(args, measure, summarize, render, harness.Result(NAME, TITLE, "", {}))


if __name__ == "__main__":
    main()
