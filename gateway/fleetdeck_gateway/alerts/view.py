"""What fires, as every gateway shows it: kept from the transitions the relay hears on the alerts
channel and read again from the broker every few seconds (pub/sub may miss one). Serves the
`alerts` topic, `GET /api/alerts`, the firing gauge and `@alert=NAME`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import Alert, Alerts, dump
from fleetdeck_common.targets import TargetError

from ..history.select import KnownHost
from ..ws.clients import Clients
from .evaluation import Key
from .silences import Silence, SilenceMatcher
from .store import RECENT_KEPT, AlertStore

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


class AlertsView:
    def __init__(
        self,
        store: AlertStore,
        clients: Clients,
        known: Callable[[], Sequence[KnownHost]],
        rules: Callable[[], set[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clients = clients
        self._known = known
        self._rules = rules
        self._clock = clock
        self._firing: dict[Key, Alert] = {}
        self._recent: deque[Alert] = deque(maxlen=RECENT_KEPT)
        self.silences: list[Silence] = []
        self.delivery_error: Callable[[], str | None] = lambda: None
        # What arrived while a refresh was reading: its snapshot may predate them, so they are
        # applied again on top of it rather than lost until the next refresh.
        self._heard_while_reading: list[list[Alert | Silence]] = []
        self._marking: frozenset[tuple[str, float]] = frozenset()  # the silences in effect, as last sent

    async def refresh(self) -> None:
        """Read what fires, the last transitions and the silences from the broker."""
        heard: list[Alert | Silence] = []
        self._heard_while_reading.append(heard)
        try:
            states = await self._store.states()
            recent = await self._store.recent()
            silences = await self._store.silences()
        finally:
            self._heard_while_reading.remove(heard)
        self._firing = {
            key: t.alert for key, t in states.items() if t.alert is not None and t.track.phase == "firing"
        }
        self._recent = deque(recent, maxlen=RECENT_KEPT)
        self.silences = silences
        for item in heard:
            if isinstance(item, Silence):
                self._keep_silence(item)
            else:
                self._keep_transition(item)
        self._resend_if_marks_changed()

    async def run(self) -> None:
        """Read again every few seconds (the gateway's start reads it first)."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            with contextlib.suppress(BrokerUnavailable):
                await self.refresh()

    def observe(self, alert: Alert) -> None:
        """A transition heard on the alerts channel: kept, and sent to the `alerts` topic."""
        self._keep_transition(alert)
        for heard in self._heard_while_reading:
            heard.append(alert)
        self._clients.send_topic("alerts", dump(alert))  # marked as the evaluating gateway saw it

    def _keep_transition(self, alert: Alert) -> None:
        key = (alert.rule, alert.host)
        if alert.state == "firing":
            self._firing[key] = alert
        else:
            self._firing.pop(key, None)
        if alert not in self._recent:  # a refresh may have read it from the broker already
            self._recent.append(alert)

    def _marked(self, alerts: Sequence[Alert]) -> list[Alert]:
        """The alerts marked by the silences in effect now (made or expired since they fired)."""
        muted = SilenceMatcher(self.silences, self._known(), self._clock()) if self.silences else None
        return [
            a.model_copy(update={"silenced": muted is not None and muted(a.rule, a.host)}) for a in alerts
        ]

    def firing(self) -> list[Alert]:
        """What fires now, silenced ones marked, by rule and host."""
        return self._marked(sorted(self._firing.values(), key=lambda a: (a.rule, a.host)))

    def recent(self) -> list[Alert]:
        """The last transitions, oldest first (marked as they were when they happened)."""
        return list(self._recent)

    def frame(self) -> str:
        """The `alerts` frame a client gets on subscribing."""
        return dump(Alerts(alerts=self.firing()))

    def counts(self) -> Counter[tuple[str, str]]:
        """Alerts firing now by (rule, severity)."""
        return Counter((a.rule, a.severity) for a in self._firing.values())

    def hosts_firing(self, rule: str) -> list[str]:
        """The hosts where `rule` fires now; TargetError if there is no such rule."""
        if rule not in self._rules():
            raise TargetError(f"@alert={rule}", f"there is no alert rule named {rule!r}")
        return sorted(host for (name, host) in self._firing if name == rule)

    def silence_saved(self, silence: Silence) -> None:
        """A silence this gateway just made or expired: in effect here at once."""
        self._keep_silence(silence)
        for heard in self._heard_while_reading:
            heard.append(silence)
        self._resend_if_marks_changed()

    def _resend_if_marks_changed(self) -> None:
        """A silence made, expired or run out changes which alerts are marked, with no transition
        to say so: subscribers get the whole marked list again."""
        now = self._clock()
        marking = frozenset((s.id, s.until) for s in self.silences if s.active(now))
        if marking != self._marking:
            self._marking = marking
            self._clients.send_topic("alerts", self.frame())

    def _keep_silence(self, silence: Silence) -> None:
        self.silences = [s for s in self.silences if s.id != silence.id] + [silence]
