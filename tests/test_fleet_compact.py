"""Compact fleet frames: what a decoder makes of an encoder's frames is the JSON view, rounded to 0.1."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_common.fleet_compact import VERSION, CompactFrameError, Decoder, Encoder, code
from fleetdeck_common.messages import Fleet, FleetHost, dump

Hosts = dict[str, dict[str, Any]]


def host(name: str, total: float | None = 10.0, online: bool = True, **more: Any) -> FleetHost:
    fields: dict[str, Any] = {"mem": 50.0, "load1": 0.5, "labels": {"role": "web"}, "disk": 40.0} | more
    return FleetHost(host=name, online=online, total=total, **fields)


def rounded(entry: FleetHost) -> dict[str, Any]:
    """A host as the JSON frame has it, its values rounded as compact frames send them."""
    as_json = json.loads(dump(Fleet(ts=0.0, full=True, hosts=[entry])))["hosts"][0]
    for key in ("total", "mem", "load1", "disk"):
        as_json[key] = None if as_json[key] is None else (code(as_json[key]) - 1) / 10
    return dict(as_json)


def apply(view: Hosts, frame: dict[str, Any]) -> Hosts:
    """What a dashboard holds after a frame (as with JSON frames)."""
    if frame["full"]:
        view = {}
    for entry in frame["hosts"]:
        view[entry["host"]] = entry
    return view


def known(view: Hosts) -> Hosts:
    """The hosts a view holds that are not forgotten (a forgotten host comes once more as offline)."""
    return {n: e for n, e in view.items() if e["online"] or e["labels"] or e["total"] is not None}


def test_a_full_frame_comes_back_as_the_json_frame_rounded() -> None:
    hosts = [
        host("web-1", 12.34, labels={"role": "web", "dc": "eu"}),
        host("db-1", None, online=False, mem=None, load1=None, disk=None, labels={}),
        host("é-ünicode", 99.99, load1=123456.78),
    ]
    data = Encoder().full(1700000000.125, hosts)
    assert data[0] == VERSION
    frame = Decoder().feed(data)
    assert frame == {
        "type": "fleet",
        "ts": 1700000000.125,
        "full": True,
        "hosts": [rounded(h) for h in sorted(hosts, key=lambda h: h.host)],
    }
    assert frame["hosts"][1]["total"] == 12.3 and frame["hosts"][2]["load1"] == 123456.8


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (0.05, 0.1),
        (0.04, 0.0),
        (99.95, 100.0),
        (99.94, 99.9),
        (100.0, 100.0),
        (0.0, 0.0),
        (None, None),
        (-3.0, 0.0),
        (float("nan"), None),
        (12.25, 12.3),
    ],
)
def test_values_are_rounded_half_up_to_a_tenth(value: float | None, sent: float | None) -> None:
    [entry] = Decoder().feed(Encoder().full(1.0, [host("a", total=value)]))["hosts"]
    assert entry["total"] == sent


def test_changes_carry_only_hosts_whose_rounded_values_changed_and_only_those_values() -> None:
    encoder, decoder = Encoder(), Decoder()
    first = [host("a", 10.0), host("b", 20.0), host("c", 30.0)]
    view = apply({}, decoder.feed(encoder.full(1.0, first)))
    encoder.resync(first)
    # a: a change smaller than the rounding; b: only mem; c: nothing (a sample came, same values).
    now = [host("a", 10.04), host("b", 20.0, mem=61.0), host("c", 30.0)]
    data = encoder.changes(2.0, now, [])
    assert data is not None
    frame = decoder.feed(data)
    assert [e["host"] for e in frame["hosts"]] == ["b"]
    assert frame["hosts"][0] == rounded(now[1]) and frame["full"] is False
    # Only one value in b's entry: the header, four empty sections' counts and id, mask, value.
    assert len(data) == struct.calcsize("<BBd") + 1 + 1 + 1 + 1 + 1 + 2 + 1
    assert encoder.changes(3.0, now, []) is None  # nothing new: no frame at all
    view = apply(view, frame)
    assert view == {h.host: rounded(h) for h in now}


def test_labels_sent_again_when_they_change_and_a_host_coming_back_is_defined_anew() -> None:
    encoder, decoder = Encoder(), Decoder()
    hosts = [host("a", labels={"role": "web"}), host("b")]
    decoder.feed(encoder.full(1.0, hosts))
    encoder.resync(hosts)
    relabelled = host("a", labels={"role": "db", "dc": "us"})
    data = encoder.changes(2.0, [relabelled], [])
    assert data is not None and b"role" in data and b"db" in data
    assert decoder.feed(data)["hosts"] == [rounded(relabelled)]
    # b forgotten: sent by name, offline and without labels, as in JSON frames; then back with new values.
    gone = decoder.feed(encoder.changes(3.0, [], ["b"]) or b"")
    assert gone["hosts"] == [{"host": "b", "online": False, "total": None, "mem": None, "load1": None,
                              "labels": {}, "disk": None}]  # fmt: skip
    encoder.full(3.5, [relabelled])  # a full frame for someone else meanwhile lets b's id go
    back = host("b", 77.0, mem=None)
    frame = decoder.feed(encoder.changes(4.0, [back], []) or b"")
    assert frame["hosts"] == [rounded(back)]
    unchanged = decoder.feed(encoder.changes(5.0, [host("b", 78.0, mem=None)], []) or b"")
    assert unchanged["hosts"][0]["total"] == 78.0 and unchanged["hosts"][0]["labels"] == {"role": "web"}


def test_a_catch_up_frame_brings_an_older_view_to_the_present() -> None:
    encoder = Encoder()
    joiner = Decoder()
    view = apply({}, joiner.feed(encoder.full(1.0, [host("a", 1.0), host("b", 2.0)])))
    later = [host("a", 5.0, labels={"x": "y"}, mem=None), host("b", 2.0, online=False)]
    view = apply(view, joiner.feed(encoder.catch_up(2.0, later[:1], ["b"])))
    assert known(view) == {"a": rounded(later[0])}


def test_a_corrupt_or_truncated_frame_is_refused_and_changes_nothing() -> None:
    encoder, decoder = Encoder(), Decoder()
    hosts = [host("a", labels={"role": "web", "dc": "eu"}), host("b")]
    data = encoder.full(1.0, hosts)
    held = decoder.feed(data)
    for end in range(len(data)):
        with pytest.raises(CompactFrameError, match=r"truncated|after its end|label string|never defined"):
            decoder.feed(data[:end])
    bad = {
        "version": bytes([VERSION + 1]) + data[1:],
        "flags": data[:1] + b"\x80" + data[2:],
        "trailing": data + b"\x00",
        "number too long": data[:10] + b"\xff" * 10,
    }
    for what, corrupt in bad.items():
        with pytest.raises(ValueError, match="compact fleet frame") as refused:
            decoder.feed(corrupt)
        assert isinstance(refused.value, CompactFrameError), what
    # A change for a host the decoder never had defined (it missed the frame that did).
    other = Encoder()
    other.resync([host("x"), host("y"), host("z")])
    with pytest.raises(CompactFrameError, match="never defined"):
        Decoder().feed(other.changes(2.0, [host("z", 5.0)], []) or b"")
    encoder.resync(hosts)
    moved = host("a", labels={"role": "web", "dc": "eu"}, mem=1.0)
    frame = decoder.feed(encoder.changes(2.0, [moved], []) or b"")  # only mem: the rest is still held
    assert frame["hosts"] == [rounded(moved)] and held["hosts"][0] | {"mem": 1.0} == rounded(moved)


fleet_states = st.lists(
    st.dictionaries(
        st.sampled_from([f"h{i}" for i in range(8)]),
        st.tuples(
            st.booleans(), st.none() | st.floats(0, 100), st.sampled_from([{}, {"r": "a"}, {"r": "b"}])
        ),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(fleet_states)
def test_a_follower_always_holds_the_fleet_rounded(
    states: list[dict[str, tuple[bool, float | None, dict[str, str]]]],
) -> None:
    """Ticks of changes (hosts coming, going, relabelled, values moving) keep a follower exact."""
    encoder, follower = Encoder(), Decoder()
    follower.feed(encoder.full(0.0, []))
    encoder.resync([])
    view: Hosts = {}
    before: set[str] = set()
    for tick, state in enumerate(states, start=1):
        hosts = [
            host(n, total, online, labels=labels) for n, (online, total, labels) in sorted(state.items())
        ]
        data = encoder.changes(float(tick), hosts, sorted(before - set(state)))
        if data is not None:
            view = apply(view, follower.feed(data))
        assert known(view) == {h.host: rounded(h) for h in hosts if known({h.host: rounded(h)})}
        before = set(state)


def test_ten_thousand_changing_hosts_take_a_few_bytes_each() -> None:
    """The size that makes compact frames worth having (measured against JSON in bench/)."""
    rng = random.Random(1)
    encoder = Encoder()
    hosts = [
        host(f"web-{i:05d}", rng.uniform(0, 100), labels={"role": "web", "dc": "eu"}) for i in range(10000)
    ]
    encoder.full(1.0, hosts)
    encoder.resync(hosts)
    moved = [host(h.host, rng.uniform(0, 100), labels=h.labels) for h in hosts]
    data = encoder.changes(2.0, moved, []) or b""
    assert len(data) < 6 * len(moved)  # an id step, a mask and one value of up to two bytes
