"""Sample summaries: what agents publish for the fleet view, a round trip's hosts a message."""

from __future__ import annotations

import json

import pytest

from fleetdeck_common.messages import CpuSample
from fleetdeck_common.summaries import Summary, decode, encode, summary_of


def sample(host: str, **extra: object) -> CpuSample:
    fields = {"host": host, "ts": 1000.5, "total": 12.5, "percpu": [10.0, 15.0], "mem": 40.0}
    return CpuSample.model_validate({"load": [0.5, 0.4, 0.3], **fields, **extra})


def test_summaries_round_trip_with_and_without_the_newer_fields() -> None:
    full = sample("web01", disk=87.5, net_rx=1e6, net_tx=2e5, uptime=3600.0, interval=0.5)
    rows = [summary_of(full), summary_of(sample("db01"))]
    assert rows[0] == Summary("web01", 1000.5, 0.5, 2, 12.5, 40.0, 0.5, 87.5, 1e6, 2e5, 3600.0)
    assert rows[1].disk is None and rows[1].uptime is None and rows[1].cpus == 2
    assert decode(encode(rows)) == (rows, [])
    assert decode(encode(rows).encode()) == (rows, [])  # as bytes too
    assert decode(encode([])) == ([], [])


def row(**change: object) -> list[object]:
    values = dict(zip(Summary._fields, summary_of(sample("web01", uptime=5.0)), strict=True))
    return list((values | change).values())


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (row(host=""), "host must be a name"),
        (row(host=7), "host must be a name"),
        (row(ts="now"), "ts of web01 must be a number"),
        (row(ts=float("nan")), "ts of web01 must be a number"),
        (row(interval=0), "interval of web01 must be a number above 0"),
        (row(cpus=2.5), "cpus of web01 must be a whole number"),
        (row(cpus=True), "cpus of web01 must be a whole number"),
        (row(total=100.5), "total of web01 must be a number from 0 to 100, not 100.5"),
        (row(mem=-1), "mem of web01 must be a number from 0 to 100"),
        (row(load1=None), "load1 of web01 must be a number"),
        (row(disk=101), "disk of web01 must be a number from 0 to 100"),
        (row(net_rx=-5.0), "net_rx of web01 must be a number from 0"),
        (row(uptime=True), "uptime of web01 must be a number"),
        (row()[:-1], "must be a list of 11 values (host, ts, interval"),
        ({"host": "web01"}, "must be a list of 11 values"),
    ],
)
def test_a_malformed_row_is_left_out_saying_which_field_and_the_others_stand(bad: object, says: str) -> None:
    good = row()
    summaries, errors = decode(json.dumps({"v": 1, "hosts": [good, bad, good]}))
    assert [tuple(s) for s in summaries] == [tuple(good), tuple(good)]
    assert len(errors) == 1 and errors[0].startswith("summary row 1: ") and says in errors[0], errors


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("not json", "a summary message is not JSON"),
        ("[1, []]", "must be an object with v 1"),
        ('{"v": 2, "hosts": []}', "must be an object with v 1"),
        ('{"v": 1}', "hosts must be a list"),
        ('{"v": 1, "hosts": {"web01": []}}', "hosts must be a list"),
    ],
)
def test_a_message_that_is_not_one_is_refused_saying_why(data: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        decode(data)
