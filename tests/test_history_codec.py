"""The packed history record: every value comes back within its quantum, absent stays absent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleetdeck_common.history import RECORD_SIZE, Record, decode, decode_all, encode, totals

pct = st.floats(min_value=0, max_value=100, allow_nan=False)
maybe_pct = st.none() | pct
rate = st.none() | st.floats(min_value=0, max_value=4e11, allow_nan=False)
load = st.none() | st.floats(min_value=0, max_value=5e6, allow_nan=False)


def close(got: float | None, want: float | None, absolute: float, relative: float) -> bool:
    absolute += 1e-9  # a half quantum is rounded either way
    if want is None:
        return got is None
    return got is not None and abs(got - want) <= max(absolute, abs(want) * relative)


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
    assert close(got.load1, load1, 0.005, 1 / 512)
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
