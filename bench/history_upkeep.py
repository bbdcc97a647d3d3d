"""The CPU of keeping the history tiers, measured alone: the agent's own code (record, rollups,
runs, the broker writes and their Redis command bytes) for many simulated hosts on a simulated
clock, against today's path (each sample as JSON pushed into a capped list) in the same run, and
how late each finished minute is written. Part of bench/history.py; no Redis, no network.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio

from fleetdeck_common.broker import PushCapped, Write
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.broker.redis_writes import queue_write
from fleetdeck_common.history import HistoryStore, HistoryWriter, Run, Tier
from fleetdeck_common.history.samples import record_of
from fleetdeck_common.history.writer import FLUSH_EVERY, RESERVE_EVERY, samples_per
from fleetdeck_common.messages import CpuSample, dump

T0 = 1_800_000_000 - 20  # a minute and an hour end within the first rounds


def _packed(writes: Sequence[Write]) -> int:
    """The bytes the writes are on the wire (packing them is part of the agent's cost)."""
    pipe = redis.asyncio.Redis().pipeline(transaction=False)
    for write in writes:
        queue_write(pipe, write)
    connection = redis.asyncio.Connection()
    return sum(len(part) for part in connection.pack_commands([args for args, _ in pipe.command_stack]))


def _round(hosts: Sequence[str], now: float, rng: random.Random) -> list[CpuSample]:
    samples = []
    for host in hosts:
        busy = 20 + rng.random() * 30
        samples.append(
            CpuSample(
                host=host,
                ts=now,
                total=busy,
                percpu=[busy] * 8,
                mem=41.5,
                load=[1.2, 1.1, 1.0],
                disk=63.2,
                net_rx=1.25e5,
                net_tx=4.8e4,
                uptime=86400.0,
            )
        )
    return samples


class _TiersPath:
    """What this version's agent does per round for its hosts' history (cf. Publisher.publish)."""

    def __init__(self, tiers: tuple[Tier, ...], interval: float) -> None:
        self.writer = HistoryWriter(
            tiers, samples_per(FLUSH_EVERY, interval), reserve_every=samples_per(RESERVE_EVERY, interval)
        )
        self.store = HistoryStore(MemoryBroker(), tiers)  # only its `writes` are used: nothing is sent
        self.minute_lags: list[float] = []

    def round(self, samples: Sequence[CpuSample], now: float) -> int:
        runs: list[Run] = []
        for sample in samples:
            if self.writer.add(sample.host, sample.ts, record_of(sample)):
                runs.extend(self.writer.take(sample.host, now))
        self._lags(runs, now)
        return _packed(self.store.writes(runs, now))

    def _lags(self, runs: Sequence[Run], now: float) -> None:
        for run in runs:
            if run.tier.step == 60:
                size = run.tier.record_size
                first = run.chunk + run.offset // size * run.tier.step
                slots = len(run.data) // size
                self.minute_lags.extend(
                    now - (first + (i + 1) * run.tier.step)
                    for i in range(slots)
                    if any(run.data[i * size : (i + 1) * size])
                )


class _ListPath:
    """Today's path: each sample as JSON into a 900-long list (RPUSH + LTRIM)."""

    def __init__(self) -> None:
        self.minute_lags: list[float] = []  # no rollups on this path

    def round(self, samples: Sequence[CpuSample], now: float) -> int:
        return _packed([PushCapped(f"cpu-history:{s.host}", dump(s), 900) for s in samples])


def _run(
    path: _TiersPath | _ListPath, hosts: int, rounds: int, warmup: int, spacing: float
) -> dict[str, Any]:
    rng, names = random.Random(5), [f"host-{i:05d}" for i in range(hosts)]
    cpu, wire, counted = 0.0, 0, 0
    for n in range(rounds):
        now = T0 + n * spacing
        samples = _round(names, now, rng)  # making the samples is the sampler's cost, not timed
        t0 = time.process_time()
        sent = path.round(samples, now)
        if n >= warmup:
            cpu += time.process_time() - t0
            wire += sent
            counted += len(samples)
    lags = path.minute_lags
    return {
        "cpu_us_per_sample": cpu / counted * 1e6,
        "bytes_per_sample": wire / counted,
        "samples": counted,
        "minute_lag_median_s": statistics.median(lags) if lags else None,
        "minute_lag_max_s": max(lags) if lags else None,
        "minutes": len(lags),
    }


def measure(
    tiers: tuple[Tier, ...], hosts: int, rounds: int, spacings: Sequence[float], log: Callable[[str], None]
) -> dict[str, Any]:
    """Per sample CPU of both paths at each spacing (seconds between a host's samples; 1.0 is the
    agent keeping up, more is an agent starved of CPU), and the cost at `hosts` samples/s."""
    warmup = rounds // 6
    result: dict[str, Any] = {"hosts": hosts, "rounds": rounds, "warmup": warmup, "spacings": {}}
    for spacing in spacings:
        log(f"upkeep: {hosts:,} hosts, {rounds} rounds {spacing:g} s apart")
        tiers_path = _run(_TiersPath(tiers, 1.0), hosts, rounds, warmup, spacing)
        list_path = _run(_ListPath(), hosts, rounds, warmup, spacing)
        for figures in (tiers_path, list_path):
            # At 1 Hz, `hosts` samples a second: the share of one core that takes.
            figures["core_pct_at_1hz"] = figures["cpu_us_per_sample"] * hosts / 1e4
        result["spacings"][f"{spacing:g}"] = {"tiers": tiers_path, "list": list_path}
    return result
