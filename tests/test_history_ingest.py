"""The agent's Redis commands per sample, on a fake clock: ≤ ~1.4 whether each host is sampled every
second or, starved, only every 11 s (writes counted per host's samples, bounded by wall time)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
import redis.asyncio

from fleetdeck_agent.publisher import publisher_for
from fleetdeck_common.broker import Write
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.broker.redis_writes import queue_write
from fleetdeck_common.history import DEFAULT_TIERS, HistoryStore, HistoryWriter, Record, parse_tiers, span
from fleetdeck_common.hoststore import Observation
from fleetdeck_common.messages import CpuSample
from tests.support.fakes import FakeClock

TIERS = parse_tiers(DEFAULT_TIERS)
T0 = 1_800_000_000


class CountingBroker(MemoryBroker):
    """The in-memory broker, counting the Redis commands its writes would be on a real pipeline."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.commands: dict[str, int] = {}

    async def write_batch(self, writes: Sequence[Write]) -> None:
        pipe = redis.asyncio.Redis().pipeline(transaction=False)
        for write in writes:
            queue_write(pipe, write)
        for args, _ in pipe.command_stack:
            name = str(args[0]).lower()
            self.commands[name] = self.commands.get(name, 0) + 1
        await super().write_batch(writes)


def seen(host: str, ts: float) -> Observation:
    sample = CpuSample(host=host, ts=ts, total=30, percpu=[30.0] * 4, mem=40, load=[1, 1, 1])
    return Observation(sample, {"role": "sim"}, "127.0.0.1")


async def commands_per_sample(spacing: float, rounds: int, hosts: int = 20) -> dict[str, float]:
    """Commands per sample of an agent with interval 1 s reaching each host every `spacing` s,
    after a warm-up of a tenth of the rounds."""
    clock = FakeClock(T0)
    broker = CountingBroker(clock)
    publisher = publisher_for(broker, TIERS, interval=1.0)
    names = [f"host-{i:03d}" for i in range(hosts)]
    warmup, counted = rounds // 10, {}
    for n in range(rounds):
        if n == warmup:
            counted = dict(broker.commands)
        clock.now = T0 + n * spacing + 0.3
        await publisher.publish([seen(h, clock.now) for h in names], clock.now)
    samples = (rounds - warmup) * hosts
    return {k: (v - counted.get(k, 0)) / samples for k, v in broker.commands.items()}


@pytest.mark.parametrize(("spacing", "most"), [(1.0, 1.40), (11.0, 1.50)])
async def test_commands_per_sample_stay_low_at_1_hz_and_when_starved(spacing: float, most: float) -> None:
    # Starved, a tier-0 chunk (408 s) is reserved every 37 samples and a minute ends every 5.5.
    per = await commands_per_sample(spacing, 1500)
    assert per["publish"] == pytest.approx(1 + 1 / 20)  # each sample, and the round trip's summary
    assert per.get("hset", 0) <= 0.11  # a heartbeat every 10th sample
    assert per["setrange"] <= 0.27  # every 5th sample, minutes and hours together
    assert sum(per.values()) <= most, per


async def test_a_starved_host_writes_all_its_seconds_in_one_run_and_holds_none_long() -> None:
    clock = FakeClock(T0)
    store = HistoryStore(MemoryBroker(clock), TIERS)
    writer, due = HistoryWriter(TIERS, flush_every=5, flush_within=60), []
    for n in range(40):  # one sample every 11 s
        ts = T0 + 11 * n
        due.append(writer.add("h", ts, Record(n, n, 40, 1, 20, 1e3, 2e3)))
        if due[-1]:
            runs = writer.take("h", ts)
            assert len([r for r in runs if r.tier == TIERS[0]]) <= 2  # at most a chunk's edge between
            await store.write(runs, ts)
    flushed = [n for n, d in enumerate(due) if d]
    assert flushed[0] == 0 and all(1 <= b - a <= 5 for a, b in itertools.pairwise(flushed))
    seconds = (await store.read(["h"], TIERS[0], *span(TIERS[0], T0, T0 + 440, T0 + 440)))["h"].records()
    assert [ts - T0 for ts, _ in seconds] == [11 * n for n in range(flushed[-1] + 1)]  # gaps stay empty


async def test_a_slow_host_is_written_once_its_oldest_record_is_a_minute_old() -> None:
    writer = HistoryWriter(TIERS, flush_every=100, flush_within=60)
    assert writer.add("h", T0, Record(1, 1, 1, 1, 1, 1, 1))  # the first record goes out at once
    writer.take("h", T0)
    due = [writer.add("h", T0 + 25 * n, Record(1, 1, 1, 1, 1, 1, 1)) for n in range(1, 5)]
    assert due == [False, False, False, True]  # the oldest held 0, 25, 50, then 75 s old


def test_empty_slots_are_never_written_over_records_already_written() -> None:
    writer, base = HistoryWriter(TIERS, flush_every=100), TIERS[0].chunk_start(T0)
    for ts in (base, base + 10):
        writer.add("h", ts, Record(1, 1, 1, 1, 1, 1, 1))
    first = [r for r in writer.take("h", base + 10) if r.tier == TIERS[0]]
    assert len(first) == 1 and len(first[0].data) == 11 * TIERS[0].record_size  # 9 empty slots between
    for ts in (base + 5, base + 20):  # a clock stepped back, then on: base+5 is written alone
        writer.add("h", ts, Record(1, 1, 1, 1, 1, 1, 1))
    assert [len(r.data) for r in writer.take("h", base + 20) if r.tier == TIERS[0]] == [14, 14]


def test_reserving_many_chunks_at_one_moment_is_linear() -> None:
    writer = HistoryWriter(TIERS, flush_every=1)
    for n in range(3000):  # each sample an hour apart: a new chunk of every tier each time
        writer.add(f"h{n % 3}", T0 + 3600 * n, Record(1, 1, 1, 1, 1, 1, 1))
    runs = [r for h in writer.hosts() for r in writer.take(h, T0)]
    assert len(runs) >= 3000 and all(r.reserve for r in runs)
    assert writer.sweeps <= 20  # each sweep waits for twice as many reservations
