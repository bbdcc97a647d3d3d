"""The simulated fleet: the same hosts for the same seed, loopback addresses only, and samples the
protocol accepts whatever the profile."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck_agent.simulate import CORE_COUNTS, simulated_fleet, simulated_sample
from fleetdeck_common.messages import CpuSample


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
