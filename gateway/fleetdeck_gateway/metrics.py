"""Prometheus metrics of one gateway process (own registry, so several apps can share a process)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class GatewayMetrics:
    def __init__(self, reconnects: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.clients = Gauge(
            "fleetdeck_gateway_clients", "WebSocket clients connected", registry=self.registry
        )
        self.frames_relayed = Counter(
            "fleetdeck_gateway_frames_relayed",
            "frames queued to clients",
            ["type"],
            registry=self.registry,
        )
        self.frames_dropped = Counter(
            "fleetdeck_gateway_frames_dropped",
            "stale samples replaced by a newer one before a slow client read them",
            registry=self.registry,
        )
        self.slow_disconnects = Counter(
            "fleetdeck_gateway_slow_disconnects",
            "clients closed for falling too far behind",
            registry=self.registry,
        )
        self.redis_reconnects = Gauge(
            "fleetdeck_gateway_redis_reconnects",
            "times the broker subscription was lost and re-established",
            registry=self.registry,
        )
        self.redis_reconnects.set_function(reconnects)
        self.queued_bytes = Gauge(
            "fleetdeck_gateway_queued_bytes",
            "bytes waiting in client outboxes",
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "fleetdeck_gateway_jobs_submitted", "exec jobs queued", registry=self.registry
        )

        self.alerts_firing = Gauge(
            "fleetdeck_alerts_firing",
            "alerts firing now, by rule and severity (silenced ones included)",
            ["rule", "severity"],
            registry=self.registry,
        )

    def set_alerts_firing(self, counts: Mapping[tuple[str, str], int]) -> None:
        """The firing gauge as it is now: rules no longer in use drop out."""
        self.alerts_firing.clear()
        for (rule, severity), count in counts.items():
            self.alerts_firing.labels(rule, severity).set(count)

    def slow_disconnect(self) -> None:
        """A client was closed for falling too far behind."""
        self.slow_disconnects.inc()

    def render(self, queued_bytes: int) -> bytes:
        """The text exposition for a scrape, with the bytes waiting in outboxes now."""
        self.queued_bytes.set(queued_bytes)
        return generate_latest(self.registry)
