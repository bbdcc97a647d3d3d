"""GET /api/hosts/{host}/history and /api/fleet/history against a real Redis, real agents and a
real gateway: any span, the step chosen or given, bad parameters, and restarts survived."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.procs import Gateway, RedisServer, Service, start_agent, start_gateway, wait_until
from tests.support.history import fill
from tests.support.stacks import Tokens
from tests.support.wsclient import WsClient

HOUR = 3600


@dataclass
class HistoryStack:
    redis: RedisServer
    gateway: Gateway
    agents: list[Service]
    tokens: Tokens
    logs: Path
    past: float  # where the filled hosts' three hours start

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token or self.tokens.viewer}"}
        return httpx.get(self.gateway.url + path, headers=auth, timeout=10)

    def ok(self, path: str) -> dict[str, Any]:
        response = self.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def history_stack(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[HistoryStack]:
    logs = tmp_path_factory.mktemp("history-api")
    redis = RedisServer(logs, persistent=True)
    redis.start()
    past = (time.time() - 3 * HOUR) // (2 * HOUR) * (2 * HOUR) - 2 * HOUR  # 5 to 7 hours ago, even
    # Two hosts no agent runs any more: 10 % then 30 % (past01), and 50 % throughout (past02).
    fill(redis.url, "past01", past, 3 * HOUR, lambda s: 10.0 if s < HOUR else 30.0)
    fill(redis.url, "past02", past, 3 * HOUR, lambda s: 50.0)
    agents = [
        start_agent(name, redis.url, logs, 0.5, FLEETDECK_AGENT_LABELS="role=histweb")
        for name in ("hist-a", "hist-b")
    ]
    gateway = start_gateway(redis.url, logs, tokens.file, name="gateway-history")
    stack = HistoryStack(redis, gateway, agents, tokens, logs, past)
    wait_until(
        lambda: len(stack.ok("/api/hosts/hist-a/history?since=2m")["samples"]) >= 3, 20, what="history"
    )
    yield stack
    stack.gateway.stop()  # the one started last (a test restarts it)
    for agent in stack.agents:
        agent.stop()
    redis.stop()


def test_a_live_hosts_recent_history_comes_every_second_with_every_value(history_stack: HistoryStack) -> None:
    body = history_stack.ok("/api/hosts/hist-a/history?since=15m")
    assert body["host"] == "hist-a" and body["step"] == 1
    samples = body["samples"]
    assert [s["ts"] for s in samples] == sorted({s["ts"] for s in samples})
    first = samples[0]
    assert set(first) >= {"ts", "total", "total_max", "mem", "load1", "disk", "net_rx", "net_tx"}
    assert 0 <= first["total"] <= first["total_max"] <= 100 and 0 < first["mem"] <= 100
    assert time.time() - samples[-1]["ts"] < 15  # written every few seconds


def test_the_step_follows_the_span_and_coarser_steps_come_from_the_tier_below(
    history_stack: HistoryStack,
) -> None:
    past = int(history_stack.past)
    span = f"since={past}&until={past + 3 * HOUR - 1}"
    minutes = history_stack.ok(f"/api/hosts/past01/history?{span}")  # older than an hour: 1 min
    assert minutes["step"] == 60 and len(minutes["samples"]) == 180
    assert {s["total"] for s in minutes["samples"][:60]} == {10.0}
    assert {s["total"] for s in minutes["samples"][60:]} == {30.0}
    tens = history_stack.ok(f"/api/hosts/past01/history?{span}&step=600")["samples"]
    assert [s["ts"] - past for s in tens] == [600 * i for i in range(18)]
    assert [s["total"] for s in tens] == [10.0] * 6 + [30.0] * 12
    ninety = history_stack.ok("/api/hosts/past01/history?since=90d")
    assert ninety["step"] == HOUR
    assert [(s["ts"] - past, s["total"]) for s in ninety["samples"]] == [
        (0, 10.0),
        (HOUR, 30.0),
        (2 * HOUR, 30.0),
    ]
    mixed = history_stack.ok(
        f"/api/hosts/past01/history?since={past}&until={past + 2 * HOUR - 1}&step={2 * HOUR}"
    )
    assert [(s["total"], s["total_max"]) for s in mixed["samples"]] == [(20.0, 30.0)]


def test_a_step_that_is_no_multiple_of_a_tier_is_computed_from_the_tier_holding_the_span(
    history_stack: HistoryStack,
) -> None:
    past = int(history_stack.past)  # a multiple of 7200 s, so of 90 s too
    span = f"since={past}&until={past + 3 * HOUR - 1}&step=90"
    ninety = history_stack.ok(f"/api/hosts/past01/history?{span}")
    assert ninety["step"] == 90
    # From the minutes (seconds are not kept 5 hours): each 90 s step holds one or two of them.
    assert [s["ts"] - past for s in ninety["samples"]] == [90 * i for i in range(120)]
    assert [s["total"] for s in ninety["samples"]] == [10.0] * 40 + [30.0] * 80
    week = history_stack.ok("/api/hosts/past01/history?since=7d&step=90")
    assert week["step"] == 90 and len(week["samples"]) == 120  # all of it, not only the last hour
    fleet = history_stack.ok("/api/fleet/history?since=7d&step=90&targets=past01,past02")
    assert [(s["mean"], s["online"]) for s in fleet["samples"]] == [(30.0, 2)] * 40 + [(40.0, 2)] * 80


def test_the_fleet_series_over_a_target_expression(history_stack: HistoryStack) -> None:
    past = int(history_stack.past)
    span = f"since={past}&until={past + 2 * HOUR - 1}&step={HOUR}"
    both = history_stack.ok(f"/api/fleet/history?{span}&targets=past01,past02")
    assert both["step"] == HOUR
    assert [(s["mean"], s["p95"], s["max"], s["online"]) for s in both["samples"]] == [
        (30.0, 50.0, 50.0, 2),
        (40.0, 50.0, 50.0, 2),
    ]
    live = history_stack.ok("/api/fleet/history?since=2m&targets=@role=histweb")
    assert live["step"] == 1 and max(s["online"] for s in live["samples"]) == 2
    one = history_stack.ok("/api/fleet/history?since=2m&targets=hist-a")
    assert {s["online"] for s in one["samples"]} == {1}


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?since=yesterday", "since"),
        ("?until=soon", "until"),
        ("?since=1h&until=2h", "until"),
        ("?step=0", "step"),
        ("?step=1.5", "step"),
        ("?since=30d&step=1", "step"),
        ("?step=ten", "step"),
    ],
)
def test_bad_parameters_get_a_sentence_naming_them(
    history_stack: HistoryStack, query: str, names: str
) -> None:
    response = history_stack.get("/api/hosts/hist-a/history" + query)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(names), response.json()


def test_bad_targets_unknown_hosts_and_missing_tokens(history_stack: HistoryStack) -> None:
    bad = history_stack.get("/api/fleet/history?targets=@=x")
    assert bad.status_code == 400 and bad.json()["message"].startswith("targets")
    missing = history_stack.get("/api/hosts/never-heard-of/history")
    assert missing.status_code == 404
    assert httpx.get(history_stack.gateway.url + "/api/fleet/history").status_code == 401
    assert history_stack.get("/api/fleet/history", history_stack.tokens.operator).status_code == 200


def test_history_outlives_a_restart_of_agent_gateway_and_redis(history_stack: HistoryStack) -> None:
    stack = history_stack
    before = stack.ok("/api/hosts/hist-b/history?since=15m")["samples"]
    stopped_at = time.time()
    stack.agents[1].stop()
    stack.gateway.stop()
    stack.redis.stop()
    stack.redis.start()  # with its append-only file
    stack.gateway = start_gateway(stack.redis.url, stack.logs, stack.tokens.file, name="gateway-history-2")
    stack.agents[1] = start_agent(
        "hist-b", stack.redis.url, stack.logs, 0.5, FLEETDECK_AGENT_LABELS="role=histweb"
    )
    wait_until(
        lambda: stack.ok("/api/hosts/hist-b/history?since=15m")["samples"][-1]["ts"] > stopped_at,
        20,
        what="hist-b writing again",
    )
    after = {s["ts"] for s in stack.ok("/api/hosts/hist-b/history?since=15m")["samples"]}
    assert {s["ts"] for s in before} <= after


async def test_a_history_frame_after_a_gateway_restart_holds_whole_cpu_samples(
    history_stack: HistoryStack,
) -> None:
    """The v1 `history` frame read from the stored tier: `load` is [1, 5, 15] and `uptime` there."""
    stack = history_stack

    def stored_samples() -> int:
        return len(stack.ok("/api/hosts/hist-a/history?since=15m")["samples"])

    # A loaded machine may have given the agent few writes yet since the Redis restart before.
    wait_until(lambda: stored_samples() >= 14, 30, what="hist-a's history holding 14 samples")
    stack.gateway.stop()
    restarted = time.time()
    stack.gateway = start_gateway(stack.redis.url, stack.logs, stack.tokens.file, name="gateway-history-3")
    client = await WsClient.open(stack.gateway.ws_url, stack.tokens.viewer)
    try:
        await client.expect_type("hello")
        await client.send({"type": "subscribe", "topics": ["cpu"], "hosts": ["hist-a"]})
        frame = await client.expect_type("history", 20, host="hist-a")
    finally:
        await client.close()
    stored = [s for s in frame["samples"] if s["ts"] < restarted - 2]
    assert len(stored) >= 10, frame
    assert all(len(s["load"]) == 3 and s["percpu"] == [] for s in stored)
    # load1, load5 and load15 of this machine: not one value copied three times.
    assert any(len(set(s["load"])) > 1 for s in stored), [s["load"] for s in stored]
    # uptime counts from the host's boot time: a second more each second.
    assert all(s["uptime"] > 0 for s in stored)
    first, last = stored[0], stored[-1]
    assert abs((last["uptime"] - first["uptime"]) - (last["ts"] - first["ts"])) <= 1
