"""The simulated fleet: the same hosts for the same seed, loopback addresses only, and samples the
protocol accepts whatever the profile."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_agent.simulate import CORE_COUNTS, simulated_fleet, simulated_mounts, simulated_sample
from fleetdeck_common.messages import CpuSample, Mount


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another() -> None:
    assert simulated_fleet(50, seed=3) == simulated_fleet(50, seed=3)
    assert simulated_fleet(50, seed=3) != simulated_fleet(50, seed=4)


def test_hosts_are_unique_loopback_and_labelled() -> None:
    fleet = simulated_fleet(70000, seed=1, prefix="sim-")  # past 65025: a second /16
    assert len({h.name for h in fleet}) == len(fleet)
    assert len({h.address for h in fleet}) == len(fleet)
    assert all(ipaddress.ip_address(h.address).is_loopback for h in fleet)
    assert all(h.name.startswith("sim-") and set(h.labels) == {"role", "dc", "env"} for h in fleet[:100])
    assert {h.cores for h in fleet} <= set(CORE_COUNTS)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), now=st.floats(0, 4e9), interval=st.floats(0.1, 60))
def test_samples_are_valid_frames_for_every_profile(seed: int, now: float, interval: float) -> None:
    rng = random.Random(seed)
    for host in simulated_fleet(30, seed=seed):
        sample = simulated_sample(host, now, interval, rng)
        # Built without validation for speed; validating it must change nothing.
        assert CpuSample.model_validate(sample.model_dump()) == sample
        assert len(sample.percpu) == host.cores and sample.host == host.name


def test_disks_fill_slowly_and_the_fullest_mount_is_the_sample_value() -> None:
    rng = random.Random(1)
    for host in simulated_fleet(40, seed=5):
        now = 1.8e9
        mounts = simulated_mounts(host, now)
        sample = simulated_sample(host, now, 1.0, rng)
        assert mounts and mounts[0].mount in {"/", *(d.mount for d in host.disks)}
        assert sample.disk == mounts[0].used_pct == max(m.used_pct for m in mounts)
        assert all(Mount.model_validate(m.model_dump()) == m and m.free_bytes > 0 for m in mounts)
        an_hour_later = simulated_sample(host, now + 3600, 1.0, rng).disk
        assert sample.disk is not None and an_hour_later is not None
        # At most a few percent a day: within an hour it moves a little (or is cleaned up to its start).
        assert abs(an_hour_later - sample.disk) <= 0.4 or an_hour_later < sample.disk
        assert 0 <= an_hour_later <= 95


def test_uptimes_differ_and_count_seconds_and_traffic_has_bursts() -> None:
    rng = random.Random(2)
    fleet = simulated_fleet(30, seed=9)
    now = 1.8e9
    uptimes = [simulated_sample(h, now, 1.0, rng).uptime for h in fleet]
    assert len(set(uptimes)) == len(fleet)
    later = [simulated_sample(h, now + 10, 1.0, rng).uptime for h in fleet]
    # Ten seconds older, but for a host that rebooted in between.
    assert (
        sum(1 for a, b in zip(uptimes, later, strict=True) if a is not None and b == round(a + 10, 1)) >= 28
    )
    host = fleet[0]
    rx = [simulated_sample(host, now + t, 1.0, rng).net_rx or 0.0 for t in range(3600)]
    tx = [simulated_sample(host, now + t, 1.0, rng).net_tx or 0.0 for t in range(0, 3600, 60)]
    assert min(rx) > 0 and max(rx) > 5 * sorted(rx)[len(rx) // 2]  # a burst within the hour
    assert min(tx) > 0
