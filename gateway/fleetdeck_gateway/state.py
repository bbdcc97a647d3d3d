"""Everything one gateway process holds, built once and reachable from handlers as `app.state.gateway`."""

from __future__ import annotations

from fleetdeck_common.broker import Broker
from fleetdeck_common.chatstore import ChatStore
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.jobstore import JobStore

from .auth import Authenticator
from .chat import ChatService
from .jobs import JobService
from .metrics import GatewayMetrics
from .relay import Relay
from .sessions import SessionStore
from .settings import GatewaySettings
from .tokens import TokenStore


class Gateway:
    def __init__(self, settings: GatewaySettings, broker: Broker, tokens: TokenStore) -> None:
        self.settings = settings
        self.broker = broker
        self.hosts = HostStore(broker)
        self.auth = Authenticator(tokens, SessionStore(broker), settings.allowed_origins)
        self.metrics = GatewayMetrics(lambda: float(broker.reconnects))
        jobs = JobStore(broker)
        self.relay = Relay(broker, self.hosts, jobs, self.metrics, settings.forget_after, settings.fleet_tick)
        self.jobs = JobService(jobs, settings.target_policy(), self.relay.presence.presence.addresses_with)
        self.chat = ChatService(ChatStore(broker))

    async def start(self) -> None:
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
