"""What the socket code uses of the gateway, as narrow protocols: a handler sees these services,
never the whole gateway (which `build` wires, and which satisfies them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.requests import HTTPConnection

from fleetdeck_common.messages import ExecRequest, Job, TermClose, TermInput, TermOpen, TermResize

from ..auth.identity import Identity
from ..auth.revocation import TokenClaim
from .clients import Client


class Chat(Protocol):
    async def post(self, who: Identity, text: str) -> object: ...

    async def recent(self) -> list[str]: ...


class Jobs(Protocol):
    async def submit(self, who: Identity, request: ExecRequest) -> Job: ...

    async def cancel(self, who: Identity, job_id: str) -> Job: ...

    async def get(self, job_id: str) -> Job: ...

    async def recent(self, limit: int) -> list[Job]: ...


class Samples(Protocol):
    def sample_scope(self, client: Client, hosts: frozenset[str] | None) -> None: ...

    def stop_samples(self, client: Client) -> None: ...


class LiveSamples(Protocol):
    async def live(self) -> None:
        """Until full samples reach the gateway (it takes them in only while someone watches)."""
        ...


class Following(Protocol):
    """A feed a client follows until it unsubscribes (the fleet view)."""

    def follow(self, client: Client, compact: bool | None = None) -> None: ...

    def unfollow(self, client: Client) -> None: ...


class Watches(Protocol):
    def watch(self, client: Client, job: str, after: int) -> None: ...


class Hosts(Protocol):
    def hosts(self) -> list[str]: ...

    def knows(self, host: str) -> bool: ...

    def follow(self, client: Client, changes: bool) -> None: ...


class History(Protocol):
    async def frame(self, host: str) -> str: ...


class Workers(Protocol):
    @property
    def workers(self) -> Sequence[object]: ...

    def frame(self) -> str: ...


class FiringAlerts(Protocol):
    def frame(self) -> str:
        """The `alerts` frame: what fires now."""
        ...


class Terms(Protocol):
    async def open(self, client: Client, frame: TermOpen) -> None: ...

    async def input(self, client: Client, frame: TermInput) -> None: ...

    async def resize(self, client: Client, frame: TermResize) -> None: ...

    async def close(self, client: Client, frame: TermClose) -> None: ...

    def disconnected(self, client: Client, reason: str) -> list[str]:
        """End the socket's terminals; their `term_closed` frames."""
        ...


class FrameServices(Protocol):
    """The services the frame handlers call."""

    @property
    def chat(self) -> Chat: ...

    @property
    def jobs(self) -> Jobs: ...

    @property
    def clients(self) -> Samples: ...

    @property
    def samples(self) -> LiveSamples: ...

    @property
    def fleet(self) -> Following: ...

    @property
    def watches(self) -> Watches: ...

    @property
    def presence(self) -> Hosts: ...

    @property
    def history(self) -> History: ...

    @property
    def queue(self) -> Workers: ...

    @property
    def alerts(self) -> FiringAlerts: ...

    @property
    def terms(self) -> Terms: ...


class Identify(Protocol):
    async def identify(self, conn: HTTPConnection) -> tuple[Identity | None, bool]: ...

    def origin_allowed(self, conn: HTTPConnection) -> bool: ...


class Claims(Protocol):
    def watch(self, identity: Identity, on_end: Callable[[], None] | None = None) -> TokenClaim: ...

    def forget(self, watch: TokenClaim) -> None: ...


class SocketMetrics(Protocol):
    def slow_disconnect(self) -> None: ...


class Connections(Protocol):
    def add(self, client: Client) -> None: ...

    def remove(self, client: Client) -> None: ...


class SocketServices(FrameServices, Protocol):
    """What the `/ws` endpoint uses: the handlers' services, and who may connect."""

    @property
    def auth(self) -> Identify: ...

    @property
    def revocation(self) -> Claims: ...

    @property
    def relay(self) -> Connections: ...

    @property
    def metrics(self) -> SocketMetrics: ...
