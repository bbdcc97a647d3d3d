"""Pushing alerts to an Alertmanager (`FLEETDECK_ALERTMANAGER_URL`) the way Prometheus does:
`POST /api/v2/alerts` with what newly fires and what ended, everything firing again once a
`resend_every`, each firing alert valid for four of those (so Alertmanager resolves it by itself
should fleetdeck stop sending), a resolved one with its `endsAt`.

Silenced alerts are not pushed (one pushed before its silence is ended). The work is done in
the background from the latest evaluation; `evaluated` only notes it. A failed push is retried
with backoff, from the state of that moment, never with stale alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fleetdeck_common.alerts.payload import alertmanager_alert
from fleetdeck_common.messages import Alert

from .poster import SendFailed

logger = logging.getLogger(__name__)

RESEND_EVERY = 60.0
_STALE = 10.0  # seconds without an evaluation after which this gateway stops pushing (not the holder)
Key = tuple[str, str]


def alerts_url(base: str) -> str:
    """Where Alertmanager takes alerts, under its base URL (which may carry a route prefix)."""
    return f"{base.rstrip('/')}/api/v2/alerts"


class AlertmanagerSink:
    """An `AlertSink` that keeps an Alertmanager told what fires."""

    def __init__(
        self,
        base_url: str,
        post: Callable[[str, str], Awaitable[None]],
        external_url: str,
        *,
        resend_every: float = RESEND_EVERY,
        backoff: tuple[float, float] = (1.0, 60.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = alerts_url(base_url)
        self._post = post
        self._external_url = external_url
        self._resend_every = resend_every
        self._backoff = backoff
        self._clock = clock
        self._firing: Sequence[Alert] = ()
        self._resolved: list[Alert] = []
        self._last_evaluated: float | None = None
        self._sent: dict[Key, Alert] = {}  # firing alerts Alertmanager was last told of
        self._last_full = float("-inf")
        self._failures = 0
        self._retry_at = float("-inf")
        self._wake = asyncio.Event()
        self._last_error: str | None = None
        self.pushes = 0

    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        self._firing = firing
        self._resolved.extend(a for a in changed if a.state == "resolved" and not a.silenced)
        self._last_evaluated = self._clock()
        self._wake.set()

    def last_error(self) -> str | None:
        return self._last_error

    async def run(self) -> None:
        """Push until cancelled."""
        while True:
            self._wake.clear()
            if not self._holding():
                self._sent, self._resolved = {}, []  # another gateway evaluates now; it pushes
                await self._wake.wait()
                continue
            if self._clock() >= self._retry_at:
                try:
                    await self._push()
                except Exception:  # a bug here must not end pushing for good
                    logger.exception("alertmanager: a push failed unexpectedly")
                    self._retry_at = self._clock() + self._backoff[1]
            retrying = self._retry_at > self._clock()
            due = self._retry_at if retrying else self._last_full + self._resend_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.05, due - self._clock()))

    def _holding(self) -> bool:
        """Whether this gateway evaluates the rules now (so it is the one to push)."""
        return self._last_evaluated is not None and self._clock() - self._last_evaluated <= _STALE

    async def _push(self) -> None:
        now = self._clock()
        current = {(a.rule, a.host): a for a in self._firing if not a.silenced}
        resolved = list(self._resolved)
        ended = {(a.rule, a.host) for a in resolved}
        full = now - self._last_full >= self._resend_every
        body: list[dict[str, Any]] = []
        for alert in resolved:
            earlier = self._sent.get((alert.rule, alert.host))
            started = earlier.since if earlier else None
            body.append(alertmanager_alert(alert, self._external_url, now, 0, started))
        for key, gone in self._sent.items():
            if key not in current and key not in ended:  # silenced, or its resolve was missed
                over = gone.model_copy(update={"state": "resolved", "since": now})
                body.append(alertmanager_alert(over, self._external_url, now, 0, gone.since))
        valid_for = 4 * self._resend_every
        for key, alert in current.items():
            if full or key not in self._sent or key in ended:
                body.append(alertmanager_alert(alert, self._external_url, now, valid_for))
        if not body:
            return
        try:
            await self._post(self._url, json.dumps(body))
        except SendFailed as exc:
            self._failures += 1
            low, high = self._backoff
            delay = min(high, low * 2 ** (self._failures - 1))
            self._retry_at = now + delay
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            self._last_error = f"{stamp}: {exc}; trying again in {delay:g} s"
            logger.warning("alertmanager: %s; trying again in %g s", exc, delay)
            return
        self.pushes += 1
        self._failures, self._retry_at = 0, float("-inf")
        self._sent = current
        del self._resolved[: len(resolved)]
        if full:
            self._last_full = now
