"""`fleetdeck up`: gateway, a local agent and a worker in one process on the in-memory broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import FrameType
from typing import Any, TypeVar

import uvicorn

from fleetdeck_agent.agent import run_agent
from fleetdeck_agent.publisher import publisher_for
from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.broker import create_broker
from fleetdeck_common.filestore import FileStore
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.settings import BrokerSettings
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.server import uvicorn_config
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_worker.settings import WorkerSettings
from fleetdeck_worker.termserver import serve_terms
from fleetdeck_worker.worker import Worker

logger = logging.getLogger(__name__)

MEMORY_URL = "memory://"
LOCAL_ADDRESS = "127.0.0.1"  # where the local agent's host is reached over SSH, unless set

S = TypeVar("S", bound=BrokerSettings)


def shared_settings(gateway: GatewaySettings, service: type[S]) -> S:
    """A co-located service's settings: its own from the environment, every shared one as the gateway's."""
    # The file was already resolved into redis_url (memory://); passing it again would re-read it.
    shared = (set(GatewaySettings.model_fields) & set(service.model_fields)) - {"redis_url_file"}
    values: dict[str, Any] = {name: getattr(gateway, name) for name in shared}
    return service(**values)


def local_services(gateway: GatewaySettings) -> tuple[AgentSettings, WorkerSettings]:
    """The local agent's and worker's settings: the gateway's tiers, job key, targets, logging, ..."""
    agent = shared_settings(gateway, AgentSettings)
    if agent.address is None:
        # This machine, so targeting it by its name runs over loopback (in the default allowlist)
        # instead of at a name no allowlist holds.
        agent = agent.model_copy(update={"address": LOCAL_ADDRESS})
    return agent, shared_settings(gateway, WorkerSettings)


async def run_all_in_one(
    gateway: GatewaySettings, agent: AgentSettings, worker: WorkerSettings, tokens: TokenStore
) -> None:
    broker = create_broker(MEMORY_URL)
    app = create_app(gateway, broker=broker, tokens=tokens)
    server = uvicorn.Server(uvicorn_config(app, gateway))
    stop = asyncio.Event()
    local_worker = Worker(worker, JobStore(broker), files=FileStore(broker))
    side_tasks = [
        asyncio.create_task(
            run_agent(agent, publisher_for(broker, agent.tiers(), agent.interval), stop), name="agent"
        ),
        asyncio.create_task(local_worker.run(stop), name="worker"),
        asyncio.create_task(serve_terms(worker, broker, stop, local_worker), name="terminals"),
    ]
    if tokens.generated_token:
        print(f"fleetdeck is up. Log in at: {gateway.login_url(tokens.generated_token)}", flush=True)
    else:
        print(
            f"fleetdeck is up at {gateway.base_url()}/ (log in with a token)",
            flush=True,
        )
    # uvicorn handles SIGINT/SIGTERM while it serves and re-raises them once it has shut down;
    # these handlers take that re-raise so the agent and worker still wind down and we exit 0.
    previous = {sig: signal.signal(sig, _after_shutdown) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        await server.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*side_tasks, return_exceptions=True), worker.shutdown_grace + 5
            )


def _after_shutdown(sig: int, frame: FrameType | None) -> None:
    logger.info("stopping the agent and the worker")
