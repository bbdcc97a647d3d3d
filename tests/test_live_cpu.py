"""Agents -> Redis -> gateways -> WebSocket clients, all real processes on a real Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetdeck_agent import sampler
from fleetdeck_common.hoststore import HostStore, Observation
from fleetdeck_common.messages import CpuSample
from testbed.procs import RedisServer, start_agent, start_gateway, wait_until
from tests.support.history import publish_and_finish
from tests.support.stacks import AGENT_NAMES, Stack, Tokens
from tests.support.stores import in_hosts
from tests.support.wsclient import Frame, WsClient


async def cpu_hosts_seen(client: WsClient, hosts: set[str], timeout: float = 10.0) -> dict[str, Frame]:
    """Read frames until a live `cpu` sample of every host in `hosts` has arrived."""
    seen: dict[str, Frame] = {}

    def check(frame: Frame) -> bool:
        if frame["type"] == "cpu" and frame["host"] in hosts:
            seen[frame["host"]] = frame
        return set(seen) == hosts

    await client.expect(check, timeout)
    return seen


async def test_two_clients_get_history_then_live_samples_of_both_agents(stack: Stack, tokens: Tokens) -> None:
    sampler.use_proc(None)
    sampler.take_sample("here", 1.0)  # which local disks this machine has, as the agents see them
    agents = set(AGENT_NAMES)
    wait_until(
        lambda: (
            {
                h["host"]
                for h in httpx.get(
                    stack.gateway.url + "/api/hosts", headers={"Authorization": f"Bearer {tokens.viewer}"}
                ).json()["hosts"]
            }
            >= agents
        ),
        10,
        what="both agents known",
    )
    clients = [await WsClient.open(stack.gateway.ws_url, token) for token in (tokens.operator, tokens.viewer)]
    for client, user in zip(clients, ("alice", "bob"), strict=True):
        hello = await client.recv()
        assert isinstance(hello.pop("workers"), int)  # exec workers alive (fleetdeck's addition)
        assert hello == {
            "type": "hello",
            "user": user,
            "role": "operator" if user == "alice" else "viewer",
            "version": 1,
        }
        await client.send({"type": "subscribe", "topics": ["cpu"], "ref": "s1"})
        assert await client.expect_type("subscribed") == {
            "type": "subscribed",
            "topics": ["cpu"],
            "ref": "s1",
        }
        histories: dict[str, list[Frame]] = {}
        while set(histories) < agents:
            frame = await client.expect_type("history")
            histories[frame["host"]] = frame["samples"]
        for host in agents:
            samples = histories[host]
            assert samples, f"history of {host} is empty"
            assert all(s["host"] == host for s in samples)
            assert [s["ts"] for s in samples] == sorted(s["ts"] for s in samples)
        live = await cpu_hosts_seen(client, agents)
        for host, sample in live.items():
            assert sample["ts"] > histories[host][0]["ts"]
            assert 0 <= sample["total"] <= 100 and len(sample["load"]) == 3 and sample["percpu"]
            # Protocol v1.2: uptime always, the network from an agent's second sample on, and the
            # disk wherever this machine has a local one (the agents measure this machine).
            assert sample["uptime"] > 0 and sample["net_rx"] >= 0 and sample["net_tx"] >= 0
            assert ("disk" in sample) == bool(sampler.mounts())
            assert "disk" not in sample or 0 <= sample["disk"] <= 100
    for client in clients:
        await client.close()


async def test_a_second_gateway_relays_the_same_samples(stack: Stack, tokens: Tokens, logs: Path) -> None:
    second = start_gateway(
        stack.users.url("gateway"),
        logs,
        tokens.file,
        name="gateway-second",
        FLEETDECK_JOB_KEY_FILE=stack.users.job_key,
    )
    try:
        one = await WsClient.open(stack.gateway.ws_url, tokens.viewer)
        two = await WsClient.open(second.ws_url, tokens.viewer)
        for client in (one, two):
            await client.send({"type": "subscribe", "topics": ["cpu"]})
        first_seen = await cpu_hosts_seen(one, {"agent-a"})
        ts = first_seen["agent-a"]["ts"]
        # The very same sample (same host and timestamp) reaches clients of both gateways.
        await two.expect(lambda f: f["type"] == "cpu" and f["host"] == "agent-a" and f["ts"] >= ts)
        await one.close()
        await two.close()
    finally:
        second.stop()


async def test_stopped_agent_goes_offline_within_three_intervals(
    stack: Stack, tokens: Tokens, logs: Path
) -> None:
    interval = 0.5
    agent = start_agent("agent-stops", stack.users.url("agent"), logs, interval)
    client = await WsClient.open(stack.gateway.ws_url, tokens.viewer)
    try:
        await client.send({"type": "subscribe", "topics": ["hosts"]})

        def state(frame: Frame, online: bool) -> bool:
            return frame["type"] == "hosts" and any(
                h["host"] == "agent-stops" and h["online"] is online for h in frame["hosts"]
            )

        await client.expect(lambda f: state(f, True), 10)
        assert agent.stop() == 0, agent.log()
        stopped = time.monotonic()
        await client.expect(lambda f: state(f, False), 10)
        took = time.monotonic() - stopped
        # Three intervals since the last sample, plus the presence tick and slack for a busy machine.
        assert took <= 3 * interval + 1.0, f"offline after {took:.2f}s"
        assert "stopped" in agent.log()
    finally:
        await client.close()


async def test_samples_resume_after_redis_restarts(tmp_path: Path, tokens: Tokens) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    agent = start_agent("agent-restart", redis.url, tmp_path, 0.5)
    gateway = start_gateway(redis.url, tmp_path, tokens.file, name="gateway-restart")
    client = await WsClient.open(gateway.ws_url, tokens.viewer)
    try:
        await client.send({"type": "subscribe", "topics": ["cpu"]})
        await cpu_hosts_seen(client, {"agent-restart"})
        redis.kill()
        wait_until(lambda: httpx.get(gateway.url + "/readyz").status_code == 503, 10, what="not ready")
        # While Redis is away the connection stays up and says why a message cannot go out.
        await client.send({"type": "chat", "text": "anyone?", "ref": "during-outage"})
        error = await client.expect_type("error", ref="during-outage")
        assert error["code"] == "unavailable"
        redis.start()
        restarted = time.time()
        frame = await client.expect(lambda f: f["type"] == "cpu" and f["ts"] > restarted, 5.0)
        assert frame["host"] == "agent-restart"
        assert httpx.get(gateway.url + "/readyz").status_code == 200
        metrics = httpx.get(gateway.url + "/metrics").text
        assert "fleetdeck_gateway_redis_reconnects 1.0" in metrics
        assert agent.alive() and gateway.service.alive()
    finally:
        await client.close()
        gateway.stop()
        agent.stop()
        redis.stop()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_token(stack: Stack, path: str) -> None:
    response = httpx.get(stack.gateway.url + path)
    assert response.status_code == 200
    if path == "/metrics":
        assert "fleetdeck_gateway_clients" in response.text


def test_hosts_gone_longer_than_forget_after_are_dropped_but_their_history_stays(
    tmp_path: Path, tokens: Tokens
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    long_ago = time.time() - 3600
    retired = CpuSample(host="retired", ts=long_ago, total=5, percpu=[5] * 4, mem=10, load=[0, 0, 0])
    publish_and_finish(redis.url, Observation(retired))
    assert "retired" in in_hosts(redis.url, HostStore.heartbeats)
    agent = start_agent("current", redis.url, tmp_path, 0.5)
    gateway = start_gateway(
        redis.url, tmp_path, tokens.file, name="gateway-forget", FLEETDECK_FORGET_AFTER="600"
    )
    try:
        wait_until(
            lambda: "retired" not in in_hosts(redis.url, HostStore.heartbeats),
            10,
            what="the retired host forgotten",
        )
        wait_until(
            lambda: "current" in in_hosts(redis.url, HostStore.heartbeats), 10, what="the live host kept"
        )
        hosts = httpx.get(
            gateway.url + "/api/hosts", headers={"Authorization": f"Bearer {tokens.viewer}"}
        ).json()
        assert "retired" not in {h["host"] for h in hosts["hosts"]}
        kept = httpx.get(
            gateway.url + "/api/hosts/retired/history?since=2h",
            headers={"Authorization": f"Bearer {tokens.viewer}"},
        )
        assert kept.status_code == 200 and [s["total"] for s in kept.json()["samples"]] == [5.0]
    finally:
        gateway.stop()
        agent.stop()
        redis.stop()


def test_a_hosts_detail_lists_its_file_systems_as_its_agent_measured_them(
    stack: Stack, tokens: Tokens
) -> None:
    sampler.use_proc(None)
    sampler.take_sample("here", 1.0)
    here = [m.mount for m in sampler.mounts()]  # the agents run on this machine
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    url = f"{stack.gateway.url}/api/hosts/{AGENT_NAMES[0]}"

    def detail() -> Any:
        response = httpx.get(url, headers=viewer)
        assert response.status_code == 200, response.text
        return response.json()

    # Heartbeats are read every few seconds; the agent's first one already has its file systems.
    wait_until(lambda: [m["mount"] for m in detail()["mounts"]] == here, 15, what="the host's mounts")
    entry = detail()
    assert entry["host"] == AGENT_NAMES[0] and entry["online"] is True
    for mount in entry["mounts"]:
        assert 0 <= mount["used_pct"] <= 100 and mount["free_bytes"] > 0
    missing = httpx.get(f"{stack.gateway.url}/api/hosts/no-such-host", headers=viewer)
    assert missing.status_code == 404 and "no-such-host" in missing.json()["message"]
    assert httpx.get(url).status_code == 401
