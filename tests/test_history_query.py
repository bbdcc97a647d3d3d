"""Which tier answers a span and at what step, the series made from it, and the hosts targets select."""

from __future__ import annotations

import json
import random

import pytest

from fleetdeck_common.history import DEFAULT_TIERS, RECORD_SIZE, Record, decode_all, encode, parse_tiers
from fleetdeck_common.history.codec import json_rows
from fleetdeck_common.messages import HostInfo
from fleetdeck_common.targets import TargetError
from fleetdeck_gateway.history.query import MAX_POINTS, fleet_series, host_series, plan
from fleetdeck_gateway.history.select import select_hosts

TIERS = parse_tiers(DEFAULT_TIERS)
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("back", "step", "tier", "answer"),
    [
        (900, None, 0, 1),
        (3600, None, 0, 1),
        (3601, None, 1, 60),
        (7 * 86400, None, 1, 60),
        (30 * 86400, None, 2, 3600),
        (900, 10, 0, 10),  # from seconds
        (6 * 3600, 300, 1, 300),  # from minutes: seconds are not kept that long
        (30 * 86400, 7200, 2, 7200),
        (30 * 86400, 600, 1, 600),  # minutes hold only the last 7 days of it: the rest is empty
        (7 * 86400, 90, 1, 90),  # not a multiple of a minute: computed from the minutes all the same
        (6 * 3600, 7200, 1, 7200),
        (900, 90, 0, 90),
    ],
)
def test_the_finest_tier_that_covers_the_span_answers(
    back: int, step: int | None, tier: int, answer: int
) -> None:
    chosen = plan(TIERS, NOW - back, NOW, step, NOW)
    assert (chosen.tier, chosen.step) == (tier, answer)
    assert chosen.first >= TIERS[tier].chunk_start(NOW - TIERS[tier].retention)


def test_bad_spans_and_steps_are_refused_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"^until must be later"):
        plan(TIERS, NOW, NOW - 1, None, NOW)
    with pytest.raises(ValueError, match=rf"^step 1 gives more than {MAX_POINTS:,}"):
        plan(TIERS, NOW - 86400, NOW, 1, NOW)
    with pytest.raises(ValueError, match=r"^step must be at least 60 seconds"):
        plan(parse_tiers("1m:1d"), NOW - 3600, NOW, 30, NOW)


def rec(total: float, peak: float | None = None, mem: float | None = 10.0) -> Record:
    return Record(total, peak or total, mem, 1.0, None, 100.0, None)


def test_a_host_series_keeps_each_step_and_rolls_up_coarser_ones() -> None:
    records = [(0, rec(10)), (60, rec(20, 80)), (120, rec(30, mem=None)), (300, rec(40))]
    same = host_series(records, 60, 60)
    assert [s["ts"] for s in same] == [0, 60, 120, 300] and same[1]["total_max"] == 80
    want = {"ts": 0, "total": 10.0, "total_max": 10.0, "mem": 10.0, "load1": 1.0, "disk": None}
    assert same[0] == {**want, "net_rx": 100.0, "net_tx": None}
    coarse = host_series(records, 60, 180)
    assert [(s["ts"], s["total"], s["total_max"], s["mem"]) for s in coarse] == [
        (0, 20.0, 80.0, 10.0),
        (180, 40.0, 40.0, 10.0),
    ]


def test_the_fleet_series_gives_mean_p95_max_and_how_many_reported() -> None:
    totals = {f"h{i}": [float(i), None, float(i)] for i in range(1, 21)} | {"quiet": [None, None, None]}
    series = fleet_series(totals, 1000, 1, 1)
    assert [s["ts"] for s in series] == [1000, 1002]  # the empty step is left out
    assert series[0] == {"ts": 1000, "mean": 10.5, "p95": 19.0, "max": 20.0, "online": 20}
    per_two = fleet_series({"a": [10.0, 30.0, 50.0], "b": [None, None, 70.0]}, 1000, 1, 2)
    assert per_two == [
        {"ts": 1000, "mean": 20.0, "p95": 20.0, "max": 20.0, "online": 1},
        {"ts": 1002, "mean": 60.0, "p95": 70.0, "max": 70.0, "online": 2},
    ]


def test_a_step_not_a_multiple_of_the_tiers_counts_each_record_where_it_starts() -> None:
    minutes = [(i * 60, rec(float(i))) for i in range(6)]  # 0..300 s: totals 0, 1, 2, 3, 4, 5
    assert [(s["ts"], s["total"]) for s in host_series(minutes, 60, 90)] == [
        (0, 0.5),  # starts 0 and 60
        (90, 2.0),  # 120
        (180, 3.5),  # 180 and 240
        (270, 5.0),  # 300
    ]
    totals: dict[str, list[float | None]] = {
        "a": [float(i) for i in range(6)],
        "b": [None, None, 12.5, None, None, None],
    }
    series = fleet_series(totals, 60, 60, 90)  # slots at 60, 120, … 360 s
    assert [(s["ts"], s["mean"], s["max"], s["online"]) for s in series] == [
        (0, 0.0, 0.0, 1),  # 60
        (90, 1.0, 1.0, 1),  # 120
        (180, 7.5, 12.5, 2),  # 180 and 240: a's mean 2.5, b's 12.5
        (270, 4.0, 4.0, 1),  # 300
        (360, 5.0, 5.0, 1),  # 360
    ]


KNOWN = [
    HostInfo(host="web01", online=True, last_seen=0, cpus=2, labels={"role": "web"}, address="127.0.0.11"),
    HostInfo(host="web02", online=False, last_seen=0, cpus=2, labels={"role": "web"}, address="127.0.0.12"),
    HostInfo(host="db01", online=True, last_seen=0, cpus=2, labels={"role": "db"}),
]


def test_targets_select_by_label_address_or_name_offline_hosts_included() -> None:
    assert select_hosts("@role=web", KNOWN) == ["web01", "web02"]
    assert select_hosts("127.0.0.0/24,!web01", KNOWN) == ["web02"]
    assert select_hosts("db01,retired09", KNOWN) == ["db01", "retired09"]  # named outright: its history
    assert select_hosts("@role=web,!127.0.0.12", KNOWN) == ["web01"]
    with pytest.raises(TargetError):
        select_hosts("@role", KNOWN)


def test_stored_records_written_straight_as_json_match_the_series() -> None:
    rng = random.Random(5)

    def one() -> Record:
        return Record(
            rng.random() * 100, 100.0, rng.random() * 100, rng.random() * 9, None, rng.random() * 1e9, 0
        )

    records = [None if rng.random() < 0.2 else one() for _ in range(500)]
    data = b"".join(bytes(RECORD_SIZE) if r is None else encode(r) for r in records)
    decoded = [(1000 + i * 60, r) for i, r in enumerate(decode_all(data)) if r is not None]
    assert [json.loads(row) for row in json_rows(data, 1000, 60)] == host_series(decoded, 60, 60)
