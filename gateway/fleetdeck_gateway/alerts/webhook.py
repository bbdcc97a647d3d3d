"""The webhook sender (`FLEETDECK_ALERT_WEBHOOK`): each evaluation that changed something becomes
one POST in Alertmanager's webhook format, holding that evaluation's transitions that are not
silenced."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from fleetdeck_common.alerts.payload import webhook_payload
from fleetdeck_common.messages import Alert

from .delivery import Delivery

ADOPT_EVERY = 10.0  # seconds between the lease holder's looks for parcels a dead gateway left
_HOLDER_GAP = 5.0  # no evaluation for this long: another gateway may have evaluated meanwhile


class WebhookSink:
    """An `AlertSink` that POSTs transitions to a webhook through `delivery`."""

    def __init__(
        self, delivery: Delivery, external_url: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._delivery = delivery
        self._external_url = external_url
        self._clock = clock
        self._last_call: float | None = None
        self._last_adopt: float | None = None
        # When each firing alert began, so a resolved one's startsAt is its firing's, as
        # Alertmanager sends it; learnt afresh from `firing` when this gateway (again) evaluates.
        self._starts: dict[tuple[str, str], float] = {}

    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        now = self._clock()
        if self._last_call is None or now - self._last_call > _HOLDER_GAP:
            self._starts = {(a.rule, a.host): a.since for a in firing}
        self._last_call = now
        if self._last_adopt is None or now - self._last_adopt >= ADOPT_EVERY:
            self._last_adopt = now
            self._delivery.adopt()
        started: dict[tuple[str, str], float] = {}
        for alert in changed:
            key = (alert.rule, alert.host)
            if alert.state == "firing":
                self._starts[key] = alert.since
            elif key in self._starts:
                started[key] = self._starts.pop(key)
        sent = [a for a in changed if not a.silenced]
        if sent:
            self._delivery.send(json.dumps(webhook_payload(sent, self._external_url, started)))

    def last_error(self) -> str | None:
        return self._delivery.last_error

    async def run(self) -> None:
        await self._delivery.run()
