"""The alert senders a gateway's settings ask for (the webhook, Alertmanager, both or neither),
built and run as one `AlertSink`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from fleetdeck_common.broker import KeyValue
from fleetdeck_common.messages import Alert

from ..settings import GatewaySettings
from .alertmanager import AlertmanagerSink
from .delivery import Delivery
from .outbox import OutboxStore
from .poster import Poster
from .webhook import WebhookSink


class Sender(Protocol):
    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None: ...

    def last_error(self) -> str | None: ...

    async def run(self) -> None: ...


class AlertSenders:
    """Every configured sender as one sink: each evaluation goes to all of them."""

    def __init__(self, senders: dict[str, Sender], poster: Poster | None = None) -> None:
        self.senders = senders
        self._poster = poster

    def evaluated(self, changed: Sequence[Alert], firing: Sequence[Alert]) -> None:
        for sender in self.senders.values():
            sender.evaluated(changed, firing)

    def last_error(self) -> str | None:
        """Each sender's latest error, named ("webhook: …; alertmanager: …"), or None."""
        errors = [f"{name}: {error}" for name, s in self.senders.items() if (error := s.last_error())]
        return "; ".join(errors) or None

    async def run(self) -> None:
        """Deliver until cancelled (returns at once when nothing is configured)."""
        await asyncio.gather(*(s.run() for s in self.senders.values()))

    async def close(self) -> None:
        if self._poster is not None:
            await self._poster.close()


def build_senders(settings: GatewaySettings, broker: KeyValue) -> AlertSenders:
    """The senders `settings` configure, posting through one HTTP client."""
    if not settings.alert_webhook and not settings.alertmanager_url:
        return AlertSenders({})
    poster = Poster(settings.alert_send_timeout)
    external = settings.base_url()
    senders: dict[str, Sender] = {}
    if settings.alert_webhook:
        delivery = Delivery("webhook", settings.alert_webhook, poster.post, OutboxStore(broker))
        senders["webhook"] = WebhookSink(delivery, external)
    if settings.alertmanager_url:
        senders["alertmanager"] = AlertmanagerSink(settings.alertmanager_url, poster.post, external)
    return AlertSenders(senders, poster)
