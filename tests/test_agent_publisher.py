"""The agent's heartbeats: written when they change and every HEARTBEAT_EVERY seconds, not per sample."""

from __future__ import annotations

import itertools

from fleetdeck_agent.publisher import HEARTBEAT_EVERY, HeartbeatPacer
from fleetdeck_common.hoststore import Observation
from fleetdeck_common.messages import CpuSample


def seen(host: str, cores: int = 2, labels: dict[str, str] | None = None) -> Observation:
    sample = CpuSample(host=host, ts=0, total=1, percpu=[1.0] * cores, mem=1, load=[0, 0, 0])
    return Observation(sample, labels or {}, "")


def test_an_unchanged_heartbeat_is_refreshed_every_few_seconds_and_a_changed_one_at_once() -> None:
    pacer = HeartbeatPacer()
    written = [t for t in range(60) if pacer.due(seen("web01"), float(t))]
    assert written[0] == 0 and 5 <= len(written) <= 7  # about every HEARTBEAT_EVERY seconds
    assert all(b - a <= HEARTBEAT_EVERY for a, b in itertools.pairwise(written))
    assert pacer.due(seen("web01", labels={"role": "web"}), 60.5)  # new labels: at once
    assert pacer.due(seen("web01", cores=4, labels={"role": "web"}), 61.0)  # more cores: at once
    assert not pacer.due(seen("web01", cores=4, labels={"role": "web"}), 62.0)


def test_a_fleets_heartbeats_are_spread_over_the_interval() -> None:
    pacer = HeartbeatPacer()
    hosts = [f"host{i:04d}" for i in range(1000)]
    assert all(pacer.due(seen(h), 0.0) for h in hosts)  # each host's first heartbeat at once
    per_second = [sum(pacer.due(seen(h), float(t)) for h in hosts) for t in range(1, 11)]
    assert sum(per_second) == 1000 and max(per_second) < 200
