"""A private stack for alert tests: its own Redis, agents labelled `suite=alerts`, gateways that
share one rules file; and reading alert frames and the lease."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from fleetdeck_gateway.alerts import store as alert_store
from testbed.procs import Gateway, RedisServer, Service, start_agent, start_gateway
from tests.support.stacks import Tokens
from tests.support.wsclient import Frame, WsClient

LABELS = "suite=alerts"


HOLDS = "total >= 0"  # any CPU is >= 0: the rule fires as soon as it is read
NEVER = "total > 1000"


def rules_text(hot: str = HOLDS) -> str:
    """`hot` on agent hot-1 (met at once by default: any CPU is >= 0), `gone` on every agent here."""
    return (
        "rules:\n"
        f"  - {{name: hot, expr: {hot}, targets: hot-1, severity: critical,\n"
        "      summary: '{host} at {value}%'}\n"
        "  - {name: gone, expr: offline, targets: '@suite=alerts'}\n"
    )


@dataclass
class AlertStack:
    workdir: Path
    redis: RedisServer
    rules: Path
    tokens: Tokens
    agents: dict[str, Service] = field(default_factory=dict)
    gateways: list[Gateway] = field(default_factory=list)
    gateway_env: dict[str, str] = field(default_factory=dict)  # e.g. a webhook every gateway sends to

    def start_agent(self, name: str) -> Service:
        self.agents[name] = start_agent(
            name, self.redis.url, self.workdir, 0.5, FLEETDECK_AGENT_LABELS=LABELS
        )
        return self.agents[name]

    def start_gateway(self, name: str) -> Gateway:
        # Any: mypy cannot tell these names from start_gateway's own keyword arguments.
        env: dict[str, Any] = {"FLEETDECK_ALERT_RULES": str(self.rules), **self.gateway_env}
        gateway = start_gateway(self.redis.url, self.workdir, self.tokens.file, name, **env)
        self.gateways.append(gateway)
        return gateway

    def set_hot(self, hot: str) -> None:
        """Rewrite the rules with `hot`'s condition; every gateway reads them again."""
        self.rules.write_text(rules_text(hot))

    def lease_owner(self) -> str | None:
        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        try:
            owner = client.get(alert_store._LEASE)
            return str(owner) if owner is not None else None
        finally:
            client.close()

    def holder(self) -> Gateway | None:
        """The gateway holding the evaluation lease now."""
        owner = self.lease_owner() or ""
        return next((g for g in self.gateways if f"-{g.service.pid}-" in owner and g.service.alive()), None)

    def api(self, gateway: Gateway, path: str = "/api/alerts") -> dict[str, Any]:
        answer = httpx.get(
            gateway.url + path, headers={"Authorization": f"Bearer {self.tokens.viewer}"}, timeout=10
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


@contextlib.contextmanager
def alert_stack(
    workdir: Path,
    tokens: Tokens,
    agents: tuple[str, ...],
    gateways: int,
    hot: str = HOLDS,
    **gateway_env: str,
) -> Iterator[AlertStack]:
    """With `hot=NEVER` nothing fires until a test rewrites the rules (`stack.set_hot(HOLDS)`),
    after its clients have subscribed: a gateway evaluates as soon as it starts."""
    redis_server = RedisServer(workdir)
    redis_server.start()
    rules = workdir / "rules.yaml"
    rules.write_text(rules_text(hot))
    stack = AlertStack(workdir, redis_server, rules, tokens, gateway_env=gateway_env)
    try:
        for name in agents:
            stack.start_agent(name)
        for number in range(gateways):
            stack.start_gateway(f"gateway-alerts-{number + 1}")
        yield stack
    finally:
        for gateway in stack.gateways:
            gateway.stop()
        for agent in stack.agents.values():
            agent.stop()
        redis_server.stop()


async def subscribed(gateway: Gateway, token: str) -> tuple[WsClient, Frame]:
    """A client of `gateway` subscribed to `alerts`, and the `alerts` frame it got first."""
    client = await WsClient.open(gateway.ws_url, token)
    await client.send({"type": "subscribe", "topics": ["alerts"]})
    first = await client.expect_type("alerts", timeout=20)
    return client, first


def transition(frame: Frame) -> tuple[str, str, str]:
    return frame["rule"], frame["host"], frame["state"]


def transitions(client: WsClient) -> list[tuple[str, str, str]]:
    """Every `alert` frame the client has been sent so far, in order."""
    return [transition(f) for f in client.seen if f.get("type") == "alert"]


async def expect_transition(client: WsClient, rule: str, host: str, state: str, timeout: float = 30) -> Frame:
    return await client.expect(
        lambda f: f.get("type") == "alert" and transition(f) == (rule, host, state), timeout
    )


def recent(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [transition(a) for a in body["recent"]]
