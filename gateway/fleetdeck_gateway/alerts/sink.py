"""Where an evaluation's outcome goes besides the `alerts` topic: the seam between evaluating the
rules and delivering them (webhook, Alertmanager)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fleetdeck_common.messages import Alert


class AlertSink(Protocol):
    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        """Called by the gateway holding the evaluation lease after every evaluation, whether or
        not anything changed: `changed` holds this evaluation's transitions (each exactly once
        across all gateways), `firing` everything firing now, silenced alerts included and marked.
        Must return at once: delivery happens in the background and never delays evaluation."""
        ...


class NoSink:
    """Delivers nothing: no webhook and no Alertmanager configured."""

    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        return None


@runtime_checkable
class ReportsErrors(Protocol):
    """A sink that can say how its deliveries went (optional: `NoSink` need not)."""

    def last_error(self) -> str | None:
        """The latest delivery error as "TIME: what failed", or None when there was none."""
        ...


def delivery_error(sink: AlertSink) -> str | None:
    """The sink's last delivery error for GET /api/alerts; None when there was none or the
    sink cannot say."""
    return sink.last_error() if isinstance(sink, ReportsErrors) else None
