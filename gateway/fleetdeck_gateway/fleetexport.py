"""`GET /metrics/fleet`: every known host's latest values for Prometheus, so one scrape of a gateway
covers the whole fleet.

A custom collector on its own registry turns the gateway's state into metric families at each
scrape; prometheus-client writes (and escapes) the exposition. A host's own labels become
Prometheus labels with their names cleaned; one that would clash with `host`, with a reserved
`__` name or with another cleaned name is renamed, never dropped silently or left to break the
scrape. An offline host is `fleetdeck_host_up 0` without values: its last ones are not current,
and Prometheus stamps what it scrapes with the time of the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from fleetdeck_common import promlabels
from fleetdeck_common.messages import HostInfo

from .feeds.fleet import Latest

GAUGES = (  # metric, help, the value in a host's latest values
    ("fleetdeck_host_cpu_percent", "CPU use over all cores, %", "total"),
    ("fleetdeck_host_memory_percent", "memory in use, %", "mem"),
    ("fleetdeck_host_load1", "load average over one minute", "load1"),
    ("fleetdeck_host_disk_used_percent", "use of the fullest local file system, %", "disk"),
    (
        "fleetdeck_host_network_receive_bytes_per_second",
        "bytes received per second, loopback left out",
        "net_rx",
    ),
    (
        "fleetdeck_host_network_transmit_bytes_per_second",
        "bytes sent per second, loopback left out",
        "net_tx",
    ),
    ("fleetdeck_host_uptime_seconds", "seconds since the host booted", "uptime"),
)


def prometheus_labels(host: str, labels: dict[str, str]) -> dict[str, str]:
    """`host` and the host's labels under names valid for Prometheus, each name once."""
    return promlabels.prometheus_labels({"host": host}, labels)


class FleetCollector(Collector):
    """Reads the hosts and their latest values afresh at every scrape."""

    def __init__(self, hosts: Callable[[], list[HostInfo]], latest: Callable[[str], Latest | None]) -> None:
        self._hosts = hosts
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        up = Metric("fleetdeck_host_up", "1 if the host's agent reports, 0 if it went quiet", "gauge")
        gauges = [(Metric(name, text, "gauge"), field) for name, text, field in GAUGES]
        for info in self._hosts():
            labels = prometheus_labels(info.host, info.labels)
            up.add_sample("fleetdeck_host_up", labels, 1.0 if info.online else 0.0)
            latest = self._latest(info.host)
            if not info.online or latest is None:
                continue
            for metric, field in gauges:
                value = getattr(latest, field)
                if value is not None:
                    metric.add_sample(metric.name, labels, float(value))
        yield up
        yield from (metric for metric, _ in gauges)


def exposition(hosts: Callable[[], list[HostInfo]], latest: Callable[[str], Latest | None]) -> bytes:
    """The text exposition of the fleet now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(hosts, latest))
    return generate_latest(registry)
