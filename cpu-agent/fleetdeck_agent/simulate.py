"""A plausible simulated fleet for demos, tests and benchmarks: `fleetdeck-agent --simulate N`.

Hosts get names, labels and core counts like a real fleet (web, api, db, cache, batch and lb
roles across three data centres, 2 to 64 cores) and CPU curves of their kind: idle, steady,
busy, a daily wave, or quiet with bursts to 100%. Each has one to three disks filling slowly (a
few percent a day, cleaned up once nearly full), network traffic of its role with bursts, and
its own uptime (rebooted every month or few). Deterministic for a given seed; the curves are
cheap enough that one core drives well over a thousand hosts at 1 Hz.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from fleetdeck_common.messages import CpuSample, Mount

ROLES = (  # role, share of the fleet, CPU profiles it may have
    ("web", 0.30, ("steady", "wave", "busy")),
    ("api", 0.20, ("steady", "wave", "spiky")),
    ("db", 0.10, ("busy", "steady")),
    ("cache", 0.10, ("idle", "steady")),
    ("batch", 0.15, ("spiky", "busy", "idle")),
    ("lb", 0.15, ("idle", "wave")),
)
DATA_CENTRES = ("eu-west", "us-east", "ap-south")
CORE_COUNTS = (2, 4, 8, 16, 32, 64)
CORE_WEIGHTS = (2, 4, 6, 4, 2, 1)
ENVIRONMENTS = ("prod", "prod", "prod", "staging")
NET_RATES = {"web": 4e6, "api": 2e6, "db": 6e6, "cache": 8e6, "batch": 1e6, "lb": 2e7}  # typical rx bytes/s
TX_RATIOS = {"web": 3.0, "api": 1.5, "db": 0.6, "cache": 1.2, "batch": 0.3, "lb": 1.0}
EXTRA_MOUNTS = {"db": ("/var/lib/data",), "batch": ("/scratch",), "web": ("/var/log",)}
DAY = 86400.0
GIB = 1 << 30


@dataclass(frozen=True)
class SimulatedDisk:
    mount: str
    size: int  # bytes
    start: float  # % used just after a clean-up
    fill: float  # % a day


@dataclass(frozen=True)
class SimulatedHost:
    name: str
    address: str
    labels: dict[str, str]
    cores: int
    profile: str
    base: float  # typical total CPU %
    period: float  # seconds of one wave or between bursts
    phase: float
    mem: float  # typical memory use %
    disks: tuple[SimulatedDisk, ...] = ()
    net: float = 1e6  # typical bytes/s received
    tx_ratio: float = 1.0  # sent per byte received
    reboot_every: float = 90 * DAY
    boot_phase: float = 0.0  # seconds into its reboot cycle at time 0


def simulated_fleet(count: int, seed: int = 7, prefix: str = "") -> list[SimulatedHost]:
    """`count` hosts, the same ones for the same seed. Addresses are loopback (127.16.0.0/12-ish),
    so an exec on simulated hosts never leaves the machine."""
    rng = random.Random(seed)
    extra = random.Random(seed * 1_000_003 + 1)  # disks, network, uptime: the older fields stay as they were
    hosts = []
    numbers: dict[tuple[str, str], int] = {}
    for index in range(count):
        role, _share, profiles = rng.choices(ROLES, weights=[r[1] for r in ROLES])[0]
        dc = rng.choice(DATA_CENTRES)
        numbers[role, dc] = numbers.get((role, dc), 0) + 1
        profile = rng.choice(profiles)
        base = {"idle": 4.0, "steady": 30.0, "busy": 72.0, "wave": 40.0, "spiky": 10.0}[profile]
        hosts.append(
            SimulatedHost(
                name=f"{prefix}{role}-{dc}-{numbers[role, dc]:03d}",
                address=f"127.{16 + index // 65025}.{index // 255 % 255}.{index % 255 + 1}",
                labels={"role": role, "dc": dc, "env": rng.choice(ENVIRONMENTS)},
                cores=rng.choices(CORE_COUNTS, weights=CORE_WEIGHTS)[0],
                profile=profile,
                base=base * rng.uniform(0.7, 1.3),
                period=rng.uniform(120.0, 900.0),
                phase=rng.uniform(0.0, 2 * math.pi),
                mem=rng.uniform(15.0, 85.0),
                disks=tuple(
                    SimulatedDisk(
                        mount=mount,
                        size=extra.choice((20, 50, 100, 500, 2000)) * GIB,
                        start=extra.uniform(10.0, 70.0),
                        fill=extra.uniform(0.2, 6.0),
                    )
                    for mount in ("/", *EXTRA_MOUNTS.get(role, ()))
                ),
                net=NET_RATES[role] * extra.uniform(0.2, 2.0),
                tx_ratio=TX_RATIOS[role] * extra.uniform(0.7, 1.3),
                reboot_every=extra.uniform(7.0, 400.0) * DAY,
                boot_phase=extra.uniform(0.0, 400.0 * DAY),
            )
        )
    return hosts


def _used(disk: SimulatedDisk, now: float) -> float:
    """Fills at `fill` a day from `start`; cleaned up back to `start` on reaching 95%."""
    span = 95.0 - disk.start
    return round(disk.start + (disk.fill * now / DAY) % span, 1)


def simulated_mounts(host: SimulatedHost, now: float) -> list[Mount]:
    """The host's disks at `now`, fullest first (for its heartbeat)."""
    mounts = []
    for disk in host.disks:
        used = _used(disk, now)
        free = int(disk.size * (100.0 - used) / 100.0)
        mounts.append(Mount.model_construct(mount=disk.mount, used_pct=used, free_bytes=free))
    return sorted(mounts, key=lambda m: -m.used_pct)


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 1)


def simulated_sample(host: SimulatedHost, now: float, interval: float, rng: random.Random) -> CpuSample:
    """The host's CPU, memory and load at `now`."""
    wave = math.sin(2 * math.pi * now / host.period + host.phase)
    if host.profile == "wave":
        total = host.base + 35.0 * wave
    elif host.profile == "spiky":
        # Quiet, with a burst to (nearly) 100% for a few seconds every period.
        burst = (now / host.period + host.phase) % 1.0 < 12.0 / host.period
        total = 96.0 if burst else host.base
    else:
        total = host.base + 6.0 * wave
    total = _clamp(total + rng.gauss(0.0, 3.0))
    # Cores share the load unevenly: a few hot, most near the mean.
    percpu = [_clamp(total + rng.gauss(0.0, 8.0)) for _ in range(host.cores)]
    load1 = round(total / 100.0 * host.cores * rng.uniform(0.8, 1.2), 2)
    # Traffic follows the host's wave, with a burst of ten times as much for a few seconds an hour.
    surge = 10.0 if (now / 3600.0 + host.phase) % 1.0 < 5.0 / 3600.0 else 1.0
    rx = host.net * (1.0 + 0.5 * wave) * surge * rng.uniform(0.8, 1.2)
    # Valid by construction: skipping validation is what lets one core drive a large fleet.
    return CpuSample.model_construct(
        host=host.name,
        ts=round(now, 3),
        total=total,
        percpu=percpu,
        mem=_clamp(host.mem + 3.0 * wave),
        load=[load1, round(load1 * 0.9, 2), round(load1 * 0.8, 2)],
        interval=interval,
        disk=max((_used(d, now) for d in host.disks), default=None),
        net_rx=round(rx, 1),
        net_tx=round(rx * host.tx_ratio * rng.uniform(0.8, 1.2), 1),
        uptime=round((now + host.boot_phase) % host.reboot_every, 1),
    )
