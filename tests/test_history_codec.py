"""The packed history record: every value comes back within its quantum, absent stays absent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleetdeck_common.history import RECORD_SIZE, Record, decode, decode_all, encode, totals
from fleetdeck_common.history.codec import WIDE_RECORD_SIZE, json_rows
from fleetdeck_common.history.samples import record_of, samples_of
from fleetdeck_common.messages import CpuSample

pct = st.floats(min_value=0, max_value=100, allow_nan=False)
maybe_pct = st.none() | pct
rate = st.none() | st.floats(min_value=0, max_value=4e11, allow_nan=False)
load = st.none() | st.floats(min_value=0, max_value=5e6, allow_nan=False)


def close(got: float | None, want: float | None, absolute: float, relative: float) -> bool:
    absolute += 1e-9  # a half quantum is rounded either way
    if want is None:
        return got is None
    return got is not None and abs(got - want) <= max(absolute, abs(want) * relative)


def near_load(got: float | None, want: float | None) -> bool:
    """Within a load's quantum: 0.01 rounded, then 1 part in 512 of it rounded (the errors add up)."""
    return close(got, want, 0.005 + (want or 0.0) / 512, 0)


@given(pct, pct, maybe_pct, load, maybe_pct, rate, rate)
def test_a_record_survives_packing_within_its_quantum(
    total: float,
    total_max: float,
    mem: float | None,
    load1: float | None,
    disk: float | None,
    rx: float | None,
    tx: float | None,
) -> None:
    record = Record(total, max(total, total_max), mem, load1, disk, rx, tx)
    data = encode(record)
    assert len(data) == RECORD_SIZE
    got = decode(data)
    assert got is not None
    assert close(got.total, record.total, 0.05, 0)
    assert close(got.total_max, record.total_max, 0.05, 0)
    assert close(got.mem, mem, 0.05, 0)
    assert close(got.disk, disk, 0.05, 0)
    assert near_load(got.load1, load1)
    assert close(got.net_rx, rx, 0.5, 1 / 512)
    assert close(got.net_tx, tx, 0.5, 1 / 512)


@given(st.lists(st.none() | pct, max_size=50))
def test_totals_read_alone_match_the_full_decode(values: list[float | None]) -> None:
    data = b"".join(bytes(RECORD_SIZE) if v is None else encode(Record(v, v, 1, 2, 3, 4, 5)) for v in values)
    full = [None if r is None else r.total for r in decode_all(data)]
    assert totals(data) == full
    assert [v is None for v in full] == [v is None for v in values]


def test_an_empty_slot_is_all_zeros_and_a_zero_sample_is_not() -> None:
    assert decode(bytes(RECORD_SIZE)) is None
    zero = encode(Record(0, 0, 0, 0, 0, 0, 0))
    assert zero != bytes(RECORD_SIZE)
    assert decode(zero) == Record(0, 0, 0, 0, 0, 0, 0)


def test_out_of_range_values_are_clamped_not_wrapped() -> None:
    got = decode(encode(Record(130, 150, -5, 1e12, 101, 1e20, -1)))
    assert got is not None
    assert (got.total, got.total_max, got.mem, got.disk, got.net_tx) == (100, 100, 0, 100, 0)
    assert got.load1 is not None and got.load1 > 5e6
    assert got.net_rx is not None and got.net_rx > 4e11


@given(pct, load, load, load)
def test_a_wide_record_keeps_load5_and_load15_and_a_narrow_one_leaves_them_out(
    total: float, load1: float | None, load5: float | None, load15: float | None
) -> None:
    record = Record(total, total, 40, load1, 50, 6, 7, load5, load15)
    wide = encode(record, wide=True)
    assert len(wide) == WIDE_RECORD_SIZE
    got = decode(wide)
    assert got is not None
    assert near_load(got.load1, load1)
    assert near_load(got.load5, load5)
    assert near_load(got.load15, load15)
    narrow = decode(encode(record))
    assert narrow is not None and (narrow.load5, narrow.load15) == (None, None)
    assert narrow[:7] == got[:7]  # the first 80 bits are the same layout


@given(st.lists(st.none() | pct, max_size=30))
def test_wide_slots_read_as_wide_slots(values: list[float | None]) -> None:
    records = [None if v is None else Record(v, v, 1, 2, 3, 4, 5, 6, 7) for v in values]
    data = b"".join(bytes(WIDE_RECORD_SIZE) if r is None else encode(r, wide=True) for r in records)
    full = decode_all(data, WIDE_RECORD_SIZE)
    assert [None if r is None else r.total for r in full] == totals(data, WIDE_RECORD_SIZE)
    assert all(r is None or (r.load5, r.load15) == (6, 7) for r in full)
    rows = json_rows(data, 100, 1, WIDE_RECORD_SIZE)
    assert len(rows) == sum(r is not None for r in records)


def test_stored_samples_are_whole_cpu_frames_but_for_per_core_values() -> None:
    live = CpuSample(
        host="h", ts=1000.0, total=12.5, percpu=[10.0, 15.0], mem=30.0, load=[0.5, 1.25, 2.0], uptime=400.0
    )
    stored = [(1000, decode(encode(record_of(live), wide=True))), (1001, None)]
    records = [(ts, r) for ts, r in stored if r is not None]
    (sample,) = samples_of("h", records, 1, boot=600.0)
    assert sample.load == [0.5, 1.25, 2.0]
    assert sample.uptime == 400.0 and sample.percpu == []
    # A record older than the host's last boot is of an earlier boot: its uptime is not known.
    (before,) = samples_of("h", records, 1, boot=1500.0)
    assert before.uptime is None
    (unknown,) = samples_of("h", records, 1)
    assert unknown.uptime is None
