"""History tiers: the setting's grammar, chunk arithmetic, and retention on a fake clock."""

from __future__ import annotations

from typing import cast

import pytest

from fleetdeck_common.broker import Reserve, SetRange
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.history import (
    CHUNK_BYTES,
    DEFAULT_TIERS,
    HistoryStore,
    HistoryWriter,
    Record,
    Tier,
    parse_tiers,
    span,
    tiers_text,
)
from tests.support.fakes import FakeClock

DAY = 86400


def test_the_default_tiers() -> None:
    tiers = parse_tiers(DEFAULT_TIERS)
    assert tiers == (Tier(1, 3600, wide=True), Tier(60, 7 * DAY), Tier(3600, 90 * DAY))
    assert [t.records for t in tiers] == [3600, 10080, 2160]
    assert tiers_text(tiers) == DEFAULT_TIERS
    assert CHUNK_BYTES <= 4096 - 16  # one 4 KiB allocation in Redis, header included
    # The finest tier's records are wider (load5, load15): its chunks fill a 6 KiB allocation.
    assert [(t.record_size, t.per_chunk) for t in tiers] == [(14, 438), (10, 408), (10, 408)]
    assert [t.chunk_bytes for t in tiers] == [6144 - 12, CHUNK_BYTES, CHUNK_BYTES]
    assert parse_tiers("1m:1d")[0].wide


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no ':'"),
        ("1s", "no ':'"),
        ("1s:1x", "retention '1x' is not a duration"),
        ("0s:1h", "step '0s' is not a duration"),
        ("1m:30s", "at least the step"),
        ("1m:1h,1s:1d", "steps must grow"),
        ("1m:1h,90s:1d", "multiple of the previous step"),
        ("1s:30d", "records per host"),
    ],
)
def test_bad_tiers_are_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_tiers(text)


def test_chunks_are_named_by_their_window_and_slots_by_their_time() -> None:
    tier = Tier(60, 7 * DAY)
    assert tier.window == 408 * 60
    assert tier.chunk_start(1_000_000_000) == 1_000_000_000 // tier.window * tier.window
    assert tier.slot_start(119.9) == 60
    assert tier.expires_at(0) == tier.window + tier.retention


def test_a_span_is_clamped_to_what_may_still_be_stored() -> None:
    tier = Tier(1, 3600)
    now = 1_000_000
    first, end = span(tier, now - 7 * DAY, now + 50, now)
    assert first == tier.chunk_start(now - 3600) and end == now + 1
    assert span(tier, now - 10, now - 20, now) == (now - 10, now - 10)


def _record(total: float) -> Record:
    return Record(total, total, 50.0, 1.0, 10.0, 100.0, 200.0)


async def test_tiers_keep_their_retention_and_then_expire() -> None:
    """Each tier's chunks outlive its retention by less than one chunk window, then are gone."""
    clock = FakeClock(1_700_000_000.0)
    broker = MemoryBroker(clock)
    tiers = parse_tiers("1s:1h,1m:1d")
    store, writer = HistoryStore(broker, tiers), HistoryWriter(tiers, flush_every=1)
    start = clock.now
    for _ in range(7200):  # two hours of samples, one a second
        writer.add("h", clock.now, _record(42.0))
        await store.write(writer.take("h", clock.now), clock.now)
        clock.now += 1
    seconds = await store.read(["h"], tiers[0], *span(tiers[0], start, clock.now, clock.now))
    kept = seconds["h"].records()
    assert 3600 <= len(kept) <= 3600 + tiers[0].window
    assert kept[-1][0] == int(clock.now) - 1 and kept[-1][1].total == 42.0
    minutes = (await store.read(["h"], tiers[1], *span(tiers[1], start, clock.now, clock.now)))["h"].records()
    assert len(minutes) == 7200 // 60  # 121 minutes touched; the one being gathered is not written yet
    assert await store.stored("h", clock.now)
    clock.now += tiers[1].retention + tiers[1].window + 61  # nothing more is heard from h
    assert not await store.stored("h", clock.now)
    writer.add("other", clock.now, _record(1.0))  # another host's write sweeps the memory broker
    await store.write(writer.take("other", clock.now), clock.now)
    assert [key for key in broker._bytes if ":h:" in key] == []  # memory stays bounded


async def test_old_records_written_late_never_make_a_chunk_without_an_expiry() -> None:
    """Records of a chunk near or past its tier's retention (a backfill, a clock step): nothing is
    written past it, and each write near it carries the expiry, so a chunk that expired between
    two writes is never made again without one (Redis's SETRANGE on a missing key makes it
    without an expiry)."""
    now = 1_700_000_000.0
    tiers = parse_tiers("1s:1h")
    tier = tiers[0]
    store, writer = HistoryStore(MemoryBroker(FakeClock(now)), tiers), HistoryWriter(tiers, flush_every=1)
    gone = now - tier.retention - tier.window  # its chunk is already out of the tier
    writer.add("h", gone, _record(1.0))
    assert store.writes(writer.take("h", gone), now) == []
    near = float(tier.chunk_start(now - tier.retention) + 5)  # its chunk expires in a few minutes
    assert 0 < tier.expires_at(tier.chunk_start(near)) - now < 600
    for ts in (near, near + 1):  # the writer reserves the chunk on the first write only
        writer.add("h", ts, _record(2.0))
        writes = store.writes(writer.take("h", ts), now)
        assert [type(w) for w in writes] == [Reserve, SetRange]
        assert 0 < cast(Reserve, writes[0]).ttl < 600
    after = tier.expires_at(tier.chunk_start(near)) + 1.0
    writer.add("h", near + 2, _record(3.0))
    assert store.writes(writer.take("h", near + 2), after) == []
