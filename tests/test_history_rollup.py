"""Rollup arithmetic: means, the highest total, gaps, an agent restart mid-step, clock steps."""

from __future__ import annotations

import pytest

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.history import HistoryStore, HistoryWriter, Record, Rollups, parse_tiers, rollup, span
from tests.support.fakes import FakeClock

TIERS = parse_tiers("1s:1h,1m:7d,1h:90d")
T0 = 1_800_000_000  # a whole hour (and minute) in unix seconds


def rec(total: float, mem: float | None = 50.0, rx: float | None = None) -> Record:
    return Record(total, total, mem, 1.0, None, rx, None)


def test_a_rollup_is_the_mean_of_each_value_and_the_highest_total() -> None:
    got = rollup([rec(10, 20, 100), rec(30, 40, None), None, Record(20, 90, None, 3.0, 7.0, 300, 5)])
    assert got is not None
    assert got.total == pytest.approx(20) and got.total_max == 90
    assert got.mem == pytest.approx(30) and got.load1 == pytest.approx(5 / 3)
    assert got.disk == 7.0 and got.net_rx == pytest.approx(200) and got.net_tx == 5
    assert rollup([None, None]) is None


def test_minutes_and_hours_finish_when_the_next_step_starts() -> None:
    rollups = Rollups(TIERS)
    done = []
    for second in range(3600 + 60):
        done += rollups.add(T0 + second, rec(second % 60))
    minutes = [d for d in done if d.tier == 1]
    hours = [d for d in done if d.tier == 2]
    assert len(minutes) == 60 and minutes[0].ts == T0 and minutes[-1].ts == T0 + 3540
    assert all(m.record.total == pytest.approx(29.5) and m.record.total_max == 59 for m in minutes)
    assert [h.ts for h in hours] == [T0] and hours[0].record.total == pytest.approx(29.5)
    assert rollups.open_step(1) == T0 + 3600


def test_gaps_are_left_out_of_the_mean_and_an_empty_step_writes_nothing() -> None:
    rollups = Rollups(TIERS)
    done = []
    for second in [*range(0, 10), *range(185, 190)]:  # 10 s, then silence for two minutes, then 5 s
        done += rollups.add(T0 + second, rec(10 if second < 10 else 40))
    done += rollups.close_all()
    minutes = {d.ts - T0: d.record.total for d in done if d.tier == 1}
    assert minutes == {0: 10, 180: 40}
    hours = [d for d in done if d.tier == 2]
    assert len(hours) == 1 and hours[0].record.total == pytest.approx(25)  # the mean of the minutes


def test_a_clock_step_back_finishes_the_open_step_and_starts_the_earlier_one() -> None:
    rollups = Rollups(TIERS)
    done = []
    for second in range(120, 150):
        done += rollups.add(T0 + second, rec(80))
    done += rollups.add(T0 + 30, rec(20))  # the clock was stepped back 2 minutes
    assert [(d.tier, d.ts - T0, d.record.total) for d in done] == [(1, 120, 80)]
    assert rollups.open_step(1) == T0
    done = rollups.add(T0 + 4000, rec(60))  # and forward, past the hour
    assert [(d.tier, d.ts - T0) for d in done] == [(1, 0), (2, 0)]


async def test_an_agent_restart_mid_minute_rolls_up_from_what_is_stored() -> None:
    clock = FakeClock(T0)
    broker = MemoryBroker(clock)
    store = HistoryStore(broker, TIERS)

    async def run(writer: HistoryWriter, seconds: range, total: float) -> None:
        for second in seconds:
            clock.now = T0 + second
            if not writer.knows("h"):
                writer.resume("h", (await store.resume(["h"], clock.now))["h"])
            writer.add("h", clock.now, rec(total))
            await store.write(writer.take("h", clock.now), clock.now)

    first = HistoryWriter(TIERS, flush_every=1)
    await run(first, range(0, 150), 10)  # 2.5 minutes, then the agent is killed (nothing finished)
    await run(HistoryWriter(TIERS, flush_every=1), range(150, 3700), 70)
    minutes = (await store.read(["h"], TIERS[1], *span(TIERS[1], T0, T0 + 3700, clock.now)))["h"].records()
    by_minute = {ts - T0: r.total for ts, r in minutes}
    assert by_minute[60] == 10 and by_minute[180] == 70
    assert by_minute[120] == pytest.approx((30 * 10 + 30 * 70) / 60, abs=0.05)  # both agents' seconds
    hour = (await store.read(["h"], TIERS[2], T0, T0 + 3600))["h"].records()
    want = (2 * 10 + 40 + 57 * 70) / 60
    assert len(hour) == 1 and hour[0][1].total == pytest.approx(want, abs=0.05)
    assert hour[0][1].total_max == 70


async def test_an_agent_that_stops_writes_its_partial_steps() -> None:
    clock = FakeClock(T0)
    store = HistoryStore(MemoryBroker(clock), TIERS)
    writer = HistoryWriter(TIERS)
    for second in range(90):
        writer.add("h", T0 + second, rec(30))
    await store.write(writer.finish("h", T0 + 90), T0 + 90)
    seconds = (await store.read(["h"], TIERS[0], T0, T0 + 90))["h"].records()
    minutes = (await store.read(["h"], TIERS[1], T0, T0 + 120))["h"].records()
    hours = (await store.read(["h"], TIERS[2], T0, T0 + 3600))["h"].records()
    assert len(seconds) == 90 and [ts - T0 for ts, _ in minutes] == [0, 60] and len(hours) == 1
