"""Fleet scale on real processes: simulated fleets, labels and `@label` targets on a loopback SSH
fleet, and the `fleet` topic from a real gateway."""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fleetdeck_common.hoststore import HostStore
from testbed.procs import BIN, RedisServer, start_agent, start_gateway, wait_until
from tests.support.history import recent
from tests.support.jobs import run_job
from tests.support.stacks import ExecStack, Tokens
from tests.support.stores import in_hosts
from tests.support.wsclient import Frame, WsClient


def test_simulate_publishes_a_plausible_fleet_from_one_process(tmp_path: Path) -> None:
    assert (
        "--simulate"
        in subprocess.run(
            [str(BIN / "fleetdeck-agent"), "--help"], capture_output=True, text=True, check=True
        ).stdout
    )
    redis = RedisServer(tmp_path)
    redis.start()
    agent = start_agent("sim", redis.url, tmp_path, 0.5, FLEETDECK_SIMULATE="60")
    try:
        wait_until(
            lambda: len(in_hosts(redis.url, HostStore.heartbeats)) == 60, 15, what="60 simulated hosts"
        )
        some = sorted(in_hosts(redis.url, HostStore.heartbeats))[:5]
        wait_until(
            lambda: all(len(recent(redis.url, host, 10)) >= 3 for host in some),
            15,
            what="a few samples of history",
        )
        beats = in_hosts(redis.url, HostStore.heartbeats)
        roles = Counter(b.labels["role"] for b in beats.values())
        assert len(roles) >= 4 and {b.labels["dc"] for b in beats.values()} == {
            "eu-west",
            "us-east",
            "ap-south",
        }
        cores = {b.cpus for b in beats.values()}
        assert cores <= {2, 4, 8, 16, 32, 64} and len(cores) >= 3
        assert len({b.address for b in beats.values()}) == 60
        assert all(b.address.startswith("127.") for b in beats.values())  # never a real network
        latest = _latest_totals(redis.url, sorted(beats))
        assert min(latest) < 20 and max(latest) > 50  # idle hosts and busy ones
        assert agent.alive()
    finally:
        assert agent.stop() == 0
        redis.stop()


def _latest_totals(redis_url: str, names: list[str]) -> list[float]:
    return [recent(redis_url, name, 30)[-1].total for name in names]  # tier 0 is written every few s


@pytest.mark.ssh
async def test_label_selectors_run_exactly_on_the_labelled_hosts(
    exec_stack: ExecStack, tokens: Tokens, tmp_path: Path
) -> None:
    role = f"web-{uuid.uuid4().hex[:6]}"
    agents = [
        start_agent(
            f"{role}-1",
            exec_stack.users.url("agent"),
            tmp_path,
            FLEETDECK_AGENT_LABELS=f"role={role},dc=eu",
            FLEETDECK_AGENT_ADDRESS="127.0.0.5",
        ),
        start_agent(
            f"{role}-2",
            exec_stack.users.url("agent"),
            tmp_path,
            FLEETDECK_AGENT_LABELS=f"role={role},dc=us",
            FLEETDECK_AGENT_ADDRESS="127.0.0.6",
        ),
        start_agent(
            f"{role}-db",
            exec_stack.users.url("agent"),
            tmp_path,
            FLEETDECK_AGENT_LABELS=f"role={role}-db",
            FLEETDECK_AGENT_ADDRESS="127.0.0.7",
        ),
    ]
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}

    def labelled() -> dict[str, Frame]:
        hosts = httpx.get(exec_stack.gateway.url + "/api/hosts", headers=viewer).json()["hosts"]
        return {h["host"]: h for h in hosts if h["host"].startswith(role) and h["labels"] and h["online"]}

    try:
        wait_until(lambda: len(labelled()) == 3, 20, what="the gateway knows the labels")
        assert labelled()[f"{role}-1"]["labels"] == {"role": role, "dc": "eu"}
        assert labelled()[f"{role}-2"]["address"] == "127.0.0.6"
        operator = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
        await operator.expect_type("hello")
        tag = f"lbl-{uuid.uuid4().hex[:8]}"
        job, results, done = await run_job(operator, f"@role={role}", f"echo {tag}")
        assert job["hosts"] == 2 and job["resolved_targets"] == "127.0.0.[5-6]"
        assert sorted(r["host"] for r in results) == ["127.0.0.5", "127.0.0.6"]
        assert done["summary"] == {"ok": 2}
        assert sorted(row["host"] for row in exec_stack.fleet.commands(tag)) == ["127.0.0.5", "127.0.0.6"]
        # Combined with other terms and exclusions, and refused outside the allowlist like any term.
        tag2 = f"lbl-{uuid.uuid4().hex[:8]}"
        _job, results, _done = await run_job(operator, f"@role={role},!@dc=us,127.0.0.8", f"echo {tag2}")
        assert sorted(r["host"] for r in results) == ["127.0.0.5", "127.0.0.8"]
        await operator.send({"type": "exec", "targets": "@role=no-such-role", "command": "id", "ref": "n"})
        error = await operator.expect_type("error", ref="n")
        assert error["code"] == "invalid_targets" and "no online host" in error["message"]
        await operator.close()
    finally:
        for agent in agents:
            agent.stop()


async def test_a_real_gateway_sends_the_whole_fleet_then_only_changes(tmp_path: Path, tokens: Tokens) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    agent = start_agent("sim", redis.url, tmp_path, 1.0, FLEETDECK_SIMULATE="40")
    gateway = start_gateway(redis.url, tmp_path, tokens.file, name="gateway-fleet")
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    try:
        wait_until(
            lambda: len(httpx.get(gateway.url + "/api/hosts", headers=viewer).json()["hosts"]) == 40,
            15,
            what="40 hosts known",
        )
        client = await WsClient.open(gateway.ws_url, tokens.viewer)
        await client.expect_type("hello")
        await client.send({"type": "subscribe", "topics": ["fleet"], "ref": "f"})
        await client.expect_type("subscribed", ref="f")
        first = await client.expect_type("fleet", timeout=5)
        assert first["full"] is True and len(first["hosts"]) == 40
        assert all(
            set(h) == {"host", "online", "total", "mem", "load1", "labels", "disk"} for h in first["hosts"]
        )
        assert all(h["disk"] is None or 0 <= h["disk"] <= 95 for h in first["hosts"])  # simulated disks
        # Each simulated host's file systems come with its heartbeat: `/` and maybe one more.
        detail = f"{gateway.url}/api/hosts/{first['hosts'][0]['host']}"
        wait_until(lambda: httpx.get(detail, headers=viewer).json()["mounts"], 15, what="simulated mounts")
        mounts = httpx.get(detail, headers=viewer).json()["mounts"]
        assert "/" in {m["mount"] for m in mounts} and all(0 <= m["used_pct"] <= 95 for m in mounts)
        later = [await client.expect_type("fleet", timeout=5) for _ in range(3)]
        assert all(frame["full"] is False and 0 < len(frame["hosts"]) <= 40 for frame in later)
        stamps = [first["ts"]] + [frame["ts"] for frame in later]
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(stamps))
        await client.close()
    finally:
        gateway.stop()
        agent.stop()
        redis.stop()
