"""Everything one gateway process holds, built once and reachable from handlers as `app.state.gateway`."""

from __future__ import annotations

import asyncio

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import Broker
from fleetdeck_common.chatstore import ChatStore
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.jobs import JobStore

from .auth.authenticator import Authenticator
from .auth.loginguard import LoginThrottle
from .auth.revocation import Revocation
from .auth.sessions import SessionStore
from .auth.tokenstore import TokenStore
from .feeds.execqueue import QueueWatch
from .feeds.relay import Relay
from .metrics import GatewayMetrics
from .services.audittrail import AuditTrail
from .services.chat import ChatService
from .services.jobservice import JobService
from .settings import GatewaySettings


class Gateway:
    def __init__(self, settings: GatewaySettings, broker: Broker, tokens: TokenStore) -> None:
        self.settings = settings
        self.broker = broker
        self.hosts = HostStore(broker)
        sessions = SessionStore(broker, settings.session_ttl)
        self.auth = Authenticator(tokens, sessions, settings.allowed_origins)
        self.audit = AuditTrail(AuditStore(broker, settings.audit_keep))
        self.login_throttle = LoginThrottle(settings.login_failures)
        self.revocation = Revocation(tokens, on_ended=self.audit.sessions_closed)
        self.metrics = GatewayMetrics(lambda: float(broker.reconnects))
        jobs = JobStore(broker)
        self.relay = Relay(broker, self.hosts, jobs, self.metrics, settings.forget_after, settings.fleet_tick)
        policy = settings.target_policy()
        self.jobs = JobService(
            jobs,
            policy,
            self.relay.presence.presence.addresses_with,
            settings.job_queue_timeout,
            audit=self.audit,
        )
        self.queue = QueueWatch(jobs, self.relay.clients, policy)
        self.relay.on_job = self.queue.observe
        self.chat = ChatService(ChatStore(broker))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.relay.start()
        self._tasks = [
            asyncio.create_task(self.queue.run(), name="queue"),
            asyncio.create_task(self.revocation.run(), name="revocation"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.stop()
