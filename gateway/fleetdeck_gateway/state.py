"""What one gateway process holds: its parts, each built once by `build.build_gateway`, and their
background work. Reachable as `app.state.gateway`; the socket code sees it through `ws.ports`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fleetdeck_common.broker import Broker
from fleetdeck_common.filestore import FileStore

from .alerts.senders import AlertSenders
from .alerts.service import Alerting
from .auth.authenticator import Authenticator
from .auth.loginguard import LoginThrottle
from .auth.revocation import Revocation
from .auth.sessions import SessionStore
from .auth.tokenstore import TokenStore
from .feeds.execqueue import QueueWatch
from .feeds.fleet import FleetView
from .feeds.hosthistory import HistoryCache
from .feeds.jobresults import JobWatches
from .feeds.presence import PresenceSync
from .feeds.relay import Relay
from .feeds.samples import LiveSamples
from .history.reader import HistoryReader
from .metrics import GatewayMetrics
from .services.audittrail import AuditTrail
from .services.chat import ChatService
from .services.jobservice import JobService
from .settings import GatewaySettings
from .terms.link import TermLink
from .terms.service import TermService
from .ws.clients import Clients


@dataclass(eq=False)
class Gateway:
    """The parts of one gateway process, and starting and stopping their background work."""

    settings: GatewaySettings
    broker: Broker
    tokens: TokenStore
    sessions: SessionStore
    auth: Authenticator
    login_throttle: LoginThrottle
    revocation: Revocation
    audit: AuditTrail
    metrics: GatewayMetrics
    clients: Clients
    watches: JobWatches
    presence: PresenceSync
    fleet: FleetView
    history: HistoryCache
    samples: LiveSamples
    long_history: HistoryReader
    relay: Relay
    queue: QueueWatch
    jobs: JobService
    files: FileStore
    chat: ChatService
    alert_senders: AlertSenders
    alerts: Alerting
    terms: TermService
    term_link: TermLink
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.relay.start()
        self._tasks = [
            asyncio.create_task(self.queue.run(), name="queue"),
            asyncio.create_task(self.revocation.run(), name="revocation"),
            asyncio.create_task(self.alert_senders.run(), name="alert-senders"),
        ]
        await self.alerts.start()
        await self.term_link.start()

    async def stop(self) -> None:
        await self.term_link.stop()
        await self.alerts.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.alert_senders.close()
        await self.relay.stop()
