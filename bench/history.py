"""Benchmark: long history — Redis memory per host, the agent's cost of keeping the tiers, and
query times through the HTTP API.

Storage: 90 days of 1 Hz samples for --hosts hosts through the agent's history code on a simulated
clock, then `MEMORY USAGE` of every key, against the same records as JSON in Redis lists. Ingest:
the agent's loop with --ingest-hosts simulated hosts, this version's publisher and today's write
path reproduced, each in its own process against its own Redis. Upkeep: the CPU of the tier code
alone (history_upkeep.py). Queries: a gateway on the filled Redis. Writes bench/history.md (raw
figures: bench/results/), quoted in docs/benchmarks.md and docs/history.md.

    scripts/bench history     # or: .venv/bin/python -m bench.history --hosts 200 --ingest-hosts 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from fleetdeck_agent.agent import run_agent
from fleetdeck_agent.publisher import publisher_for
from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.broker import PushCapped, create_broker
from fleetdeck_common.history import DEFAULT_TIERS, HistoryStore, HistoryWriter, Record, parse_tiers
from fleetdeck_common.history.store import ACCESS as HISTORY_KEYS
from fleetdeck_common.hoststore import HostStore, Observation
from fleetdeck_common.messages import CpuSample, dump
from testbed.procs import service_env

from . import harness, history_upkeep
from .measure import CpuWindow
from .stack import Stack, make_token
from .summaries.history import NAME, TITLE, bytes_sentence, render, summarize

TIERS = parse_tiers(DEFAULT_TIERS)
DAY, HOUR = 86400, 3600


def host_name(i: int) -> str:
    return f"host-{i:05d}"


def sample_of(host: str, ts: float, rng: random.Random) -> CpuSample:
    busy = 20 + 15 * math.sin(ts / 3600) + rng.random() * 10
    return CpuSample(host=host, ts=ts, total=busy, percpu=[busy] * 8, mem=41.5, load=[1.2, 1.1, 1.0])


def record_at(ts: float, rng: random.Random) -> Record:
    busy = 20 + 15 * math.sin(ts / 3600) + rng.random() * 10
    return Record(busy, busy, 41.5, 1.2, 63.2, 125_000 + rng.random() * 1e4, 48_000.0, 1.1, 1.0)


def moments(end: float) -> list[float]:
    """When the simulated agent samples: hourly until 7 days before `end`, each minute until the
    last hour, then every second. Every chunk a 1 Hz fill has gets written (and is allocated whole)."""
    start = end - 90 * DAY
    hourly = range(int(start), int(end - 7 * DAY), HOUR)
    minutely = range(int(end - 7 * DAY), int(end - HOUR), 60)
    return [*hourly, *minutely, *range(int(end - HOUR), int(end))]


async def fill(url: str, hosts: int, end: float) -> None:
    """The tiers of `hosts` hosts as agents would have written them by `end` (expiries against it)."""
    rng, times = random.Random(7), moments(end)
    async with create_broker(url, timeout=300) as broker:  # big batches on a busy machine
        store = HistoryStore(broker, TIERS)
        for first in range(0, hosts, 50):
            names = [host_name(i) for i in range(first, min(first + 50, hosts))]
            writer = HistoryWriter(TIERS)
            for n, ts in enumerate(times):
                for host in names:
                    writer.add(host, ts, record_at(ts, rng))
                if n % 120 == 119 or n == len(times) - 1:
                    runs = [
                        r
                        for h in names
                        for r in (writer.take(h, ts) if n < len(times) - 1 else writer.finish(h, ts))
                    ]
                    await broker.write_batch(store.writes(runs, end))
            beats = [Observation(sample_of(h, end, rng), {"role": "bench"}, "127.0.0.1") for h in names]
            await HostStore(broker).publish(beats)


def memory(client: redis.Redis, pattern: str) -> tuple[int, int]:
    """Keys matching `pattern` and their `MEMORY USAGE` summed (expired ones are dropped on the way)."""
    keys = list(client.scan_iter(match=pattern, count=5000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return len(keys), sum(size or 0 for size in pipe.execute())


def json_peer(client: redis.Redis, hosts: int) -> int:
    """Bytes per host of the same records as JSON `cpu` frames (8 cores) in one Redis list per tier."""
    rng = random.Random(3)
    for i in range(hosts):
        for tier in TIERS:
            frames = [dump(sample_of(f"json-{i}", 1.8e9 + n, rng)) for n in range(tier.records)]
            client.rpush(f"bench:json:{i}:{tier.step}", *frames)
    return memory(client, "bench:json:*")[1] // hosts


class TodaysPath:
    """The write path before the tiers: each JSON sample into a capped list, the heartbeat, PUBLISH."""

    def __init__(self, hosts: HostStore) -> None:
        self._hosts = hosts

    async def publish(self, observations: list[Observation], now: float) -> None:
        lists = [PushCapped(f"bench:cpu-history:{o.sample.host}", dump(o.sample), 900) for o in observations]
        await self._hosts.publish(observations, lists)

    async def finish(self, now: float) -> None:
        return None


async def ingest_child(path: str, hosts: int, url: str) -> None:
    """The agent's loop with `hosts` simulated hosts until SIGTERM, on one of the two paths."""
    settings = AgentSettings(
        simulate=hosts, interval=1.0, health_file=None, redis_url=url, log_level="WARNING"
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with create_broker(url) as broker:
        publisher = (
            publisher_for(broker, TIERS, settings.interval)
            if path == "new"
            else TodaysPath(HostStore(broker))
        )
        await run_agent(settings, publisher, stop)  # type: ignore[arg-type]


def ingest(stack: Stack, path: str, hosts: int, args: argparse.Namespace) -> dict[str, Any]:
    server = stack.redis()
    client = redis.Redis.from_url(server.url)
    argv = [sys.executable, "-m", "bench.history", "--ingest-child", path]
    argv += ["--ingest-hosts", str(hosts)]
    agent = stack.service(f"ingest-{path}-{hosts}", argv, service_env(server.url))
    time.sleep(args.warmup)
    before = client.info("commandstats")
    window = CpuWindow([agent.pid, server.service.pid if server.service else agent.pid])
    time.sleep(args.window)
    cpu, machine = window.close()
    after = client.info("commandstats")
    agent.stop()
    calls = {
        k[8:]: after[k]["calls"] - before.get(k, {}).get("calls", 0) for k in after if k != "cmdstat_info"
    }
    calls = {k: v for k, v in calls.items() if v > 0}
    samples = max(calls.get("publish", 0), 1)
    return {
        "cpu_pct": cpu[agent.pid],
        "samples_per_s": samples / machine["window_s"],
        "commands_per_s": sum(calls.values()) / machine["window_s"],
        "commands_per_sample": sum(calls.values()) / samples,
        "per_sample": {k: v / samples for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
        **machine,
    }


def timed(get: httpx.Client, path: str, repeats: int) -> tuple[list[float], dict[str, Any]]:
    times, body = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = get.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        body = response.json()
    return times, body


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    with Stack(tmp) as stack:
        raw["ingest"] = {
            str(hosts): {path: ingest(stack, path, hosts, args) for path in ("old", "new")}
            for hosts in args.ingest_hosts
        }
        raw["others_cpu_pct"] = max(r["others_cpu_pct"] for i in raw["ingest"].values() for r in i.values())
        # Starved as the agent was in the ingest: each host sampled every `hosts / samples/s` seconds.
        first = raw["ingest"][str(args.ingest_hosts[0])]["new"]
        starved = round(max(1.0, args.ingest_hosts[0] / first["samples_per_s"]), 1)
        spacings = [1.0] + ([starved] if starved > 1.0 else [])
        raw["upkeep"] = history_upkeep.measure(TIERS, args.upkeep_hosts, args.upkeep_rounds, spacings, print)
        if args.ingest_only:
            return raw
        server = stack.redis()
        client = redis.Redis.from_url(server.url)
        used_before, end, t0 = client.info("memory")["used_memory"], time.time(), time.monotonic()
        asyncio.run(fill(server.url, args.hosts, end))
        raw["fill_s"] = time.monotonic() - t0
        time.sleep(2)  # chunks already out of their tier at the end were written with a 1 s expiry
        raw["keys"], raw["history_bytes"] = memory(client, HISTORY_KEYS[0].pattern)
        raw["used_memory_delta"] = client.info("memory")["used_memory"] - used_before
        raw["json_per_host"] = json_peer(client, args.json_hosts)
        client.delete(*client.scan_iter(match="bench:json:*"))
        tokens = tmp / "tokens.txt"
        token = make_token(tokens)
        gateway = stack.gateway(server.url, tokens)
        with httpx.Client(
            base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as get:
            harness_wait = time.monotonic() + 30
            while len(get.get("/api/hosts").json()["hosts"]) < args.hosts and time.monotonic() < harness_wait:
                time.sleep(0.5)
            raw["host_ms"], host = timed(
                get, f"/api/hosts/{host_name(1)}/history?since=7d&step=60", args.repeats
            )
            raw["fleet_ms"], fleet = timed(
                get, "/api/fleet/history?since=24h&step=60", max(3, args.repeats // 3)
            )
        raw["host_points"], raw["fleet_points"] = len(host["samples"]), len(fleet["samples"])
        raw["fleet_hosts"] = max((s["online"] for s in fleet["samples"]), default=0)
    return raw


def earlier_run(path: Path) -> dict[str, Any]:
    """The storage and query figures of an earlier full run (its raw results file)."""
    data = json.loads(path.read_text())
    if "history_bytes" not in data.get("raw", {}) and "storage_run" in data.get("raw", {}):
        return dict(data["raw"]["storage_run"])  # an --ingest-only run: the full run it kept
    keep = (
        *("history_bytes", "used_memory_delta", "json_per_host", "keys", "fill_s"),
        *("host_ms", "fleet_ms", "host_points", "fleet_points", "fleet_hosts"),
    )
    return {"context": data["context"], "args": data["args"], "raw": {k: data["raw"][k] for k in keep}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000, help="hosts filled with 90 days of history")
    parser.add_argument(
        "--ingest-hosts",
        type=int,
        nargs="+",
        default=[10_000],
        help="simulated hosts at 1 Hz (each count in turn)",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="measure the ingest alone; storage and query figures from --storage-from (an earlier run)",
    )
    parser.add_argument(
        "--storage-from",
        type=Path,
        default=harness.BENCH / "results" / f"{NAME}.json",
        help="an earlier full run's raw results, for --ingest-only",
    )
    parser.add_argument("--json-hosts", type=int, default=5, help="hosts' worth of records stored as JSON")
    parser.add_argument("--upkeep-hosts", type=int, default=10_000, help="hosts whose tiers are kept alone")
    parser.add_argument("--upkeep-rounds", type=int, default=120, help="samples of each of them")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before the ingest window")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the ingest window")
    parser.add_argument("--repeats", type=int, default=15, help="requests per query")
    parser.add_argument("--ingest-child", choices=("old", "new"), help=argparse.SUPPRESS)
    harness.common_options(parser)
    args = parser.parse_args()
    if args.ingest_child:
        asyncio.run(ingest_child(args.ingest_child, args.ingest_hosts[0], os.environ["REDIS_URL"]))
        return
    earlier = earlier_run(args.storage_from) if args.ingest_only else None
    result = harness.Result(NAME, TITLE, "", {})
    raw, ctx = harness.measured(args, lambda tmp: measure(args, tmp))
    if earlier:
        raw["storage_run"] = earlier
    s = summarize(raw, args, sum(t.records for t in TIERS))
    result.summary, result.data = render(s, raw, args, ctx), harness.record(ctx, args, s, raw, drop=())
    harness.publish(args, result)
    if not args.no_docs:
        harness.quote(harness.ROOT / "docs" / "history.md", "history_bytes", bytes_sentence(s))


if __name__ == "__main__":
    main()
