"""Presence: a host is offline once it misses three intervals of heartbeats."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_gateway.feeds.hosttable import HostTable


def test_new_host_is_a_change_and_shows_online() -> None:
    presence = HostTable()
    assert presence.observe("a", 100.0, 1.0, 4, now=100.0) is True
    assert [(h.host, h.online, h.cpus) for h in presence.snapshot()] == [("a", True, 4)]
    assert presence.observe("a", 101.0, 1.0, 4, now=101.0) is False


def test_host_goes_offline_after_three_missed_intervals_and_back() -> None:
    presence = HostTable()
    presence.observe("a", 100.0, 0.5, 2, now=100.0)
    assert presence.evaluate(101.5) == []  # exactly three intervals: still online
    assert presence.evaluate(101.6) == ["a"]
    assert presence.snapshot()[0].online is False
    assert presence.evaluate(200.0) == []  # already offline: no new change
    assert presence.observe("a", 200.0, 0.5, 2, now=200.0) is True
    assert presence.snapshot()[0].online is True


def test_stale_heartbeat_from_broker_shows_offline_and_old_beats_are_ignored() -> None:
    presence = HostTable()
    presence.observe("gone", 10.0, 1.0, 8, now=1000.0)
    assert presence.snapshot()[0].online is False
    presence.observe("gone", 999.5, 1.0, 8, now=1000.0)
    assert presence.observe("gone", 500.0, 1.0, 8, now=1000.0) is False
    assert presence.snapshot()[0].last_seen == 999.5


def test_hosts_silent_for_longer_than_the_limit_are_gone() -> None:
    presence = HostTable()
    presence.observe("old", 100.0, 1.0, 2, now=100.0)
    presence.observe("new", 1000.0, 1.0, 2, now=1000.0)
    assert presence.gone(1000.0, forget_after=600) == ["old"]
    presence.forget("old")
    assert presence.hosts() == ["new"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.floats(0.0, 5.0),  # how long after the previous event
            st.sampled_from([0.25, 0.5, 1.0, 5.0]),  # the host's interval
            st.booleans(),  # a heartbeat (True) or an evaluation (False)
        ),
        max_size=60,
    )
)
def test_evaluate_tells_exactly_the_hosts_that_went_quiet_whatever_it_skips(
    events: list[tuple[str, float, float, bool]],
) -> None:
    """`evaluate` skips looking at every host until the first could go quiet: it must still tell
    each host that did, at the first evaluation after it did, as looking every time would."""
    table, now = HostTable(), 0.0
    seen: dict[str, tuple[float, float]] = {}  # the model: host -> (last seen, interval)
    online: set[str] = set()
    for host, step, interval, beat in events:
        now += step
        if beat:
            table.observe(host, now, interval, 1, now)
            seen[host] = (now, interval)
            online.add(host)
        else:
            quiet = sorted(h for h in online if now - seen[h][0] > 3 * seen[h][1])
            online -= set(quiet)
            assert sorted(table.evaluate(now)) == quiet
            assert {h.host for h in table.snapshot() if h.online} == online
