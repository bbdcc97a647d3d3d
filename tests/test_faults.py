"""The fault suite: each test names the guarantee it proves while a part of the stack fails.

Longer variants of the outages run with FLEETDECK_LONG_FAULTS=1 (not in CI).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis as sync_redis

from fleetdeck_common.broker import GAP, Event, create_broker
from testbed.procs import RedisServer, start_agent, start_gateway, start_worker, wait_until
from tests.support.jobs import collect_job
from tests.support.stacks import Fleet, Stack, Tokens
from tests.support.wsclient import Frame, WsClient

LONG = os.environ.get("FLEETDECK_LONG_FAULTS") == "1"
KILLED_FOR = 15.0 if LONG else 5.0
FROZEN_FOR = 60.0 if LONG else 20.0


def _fresh_sample(since: float, results: list[Frame], job: str) -> object:
    """A predicate for a sample taken after `since`, keeping the job's results that pass by."""

    def check(frame: Frame) -> bool:
        if frame["type"] == "result" and frame.get("job") == job:
            results.append(frame)
        return bool(frame["type"] == "cpu" and frame["ts"] > since)

    return check


@pytest.mark.ssh
async def test_redis_killed_then_frozen_mid_job_every_process_recovers_and_no_result_is_lost_or_doubled(
    tmp_path: Path, tokens: Tokens, fleet: Fleet
) -> None:
    redis = RedisServer(tmp_path, persistent=True)
    redis.start()
    agents = [start_agent(f"fault-{n}", redis.url, tmp_path, 0.5) for n in range(3)]
    worker = start_worker(redis.url, tmp_path, "w-fault", **fleet.worker_env(FLEETDECK_CLAIM_IDLE="60"))
    gateway = start_gateway(
        redis.url, tmp_path, tokens.file, name="gateway-fault", FLEETDECK_BROKER_TIMEOUT="1"
    )
    cookies = httpx.post(gateway.url + "/api/login", json={"token": tokens.viewer}).cookies
    client = await WsClient.open(gateway.ws_url, tokens.operator)
    try:
        await client.expect_type("hello")
        await client.send({"type": "subscribe", "topics": ["cpu"]})
        await client.expect(lambda f: f["type"] == "cpu", 10)
        tag = f"fault-{uuid.uuid4().hex[:8]}"
        seconds = KILLED_FOR + FROZEN_FOR + 8
        await client.send(
            {
                "type": "exec",
                "targets": "127.0.0.2-51",
                "command": f"echo {tag}; sleep {seconds:.0f}",
                "timeout": seconds + 60,
                "ref": "j",
            }
        )
        job = (await client.expect(lambda f: f.get("ref") == "j"))["job"]
        wait_until(lambda: len(fleet.commands(tag)) == 50, 30, what="all 50 hosts running")
        results: list[Frame] = []

        # Killed (kill -9) and started again with its append-only file.
        redis.kill()
        wait_until(lambda: httpx.get(gateway.url + "/readyz").status_code == 503, 10, what="not ready")
        page = httpx.get(gateway.url + "/", cookies=cookies, timeout=10)
        assert page.status_code == 503 and "cannot reach its broker" in page.text
        viewer = {"Authorization": f"Bearer {tokens.viewer}"}
        assert (
            httpx.get(gateway.url + "/api/hosts", headers=viewer, timeout=10).status_code == 200
        )  # from memory
        assert (
            httpx.get(gateway.url + "/api/hosts", cookies=cookies, timeout=10).status_code == 503
        )  # session
        assert httpx.get(gateway.url + "/api/jobs", cookies=cookies, timeout=10).status_code == 503
        time.sleep(KILLED_FOR)  # a fixed wait: the outage's length is what this test sets
        redis.start()
        answering = time.time()
        await client.expect(_fresh_sample(answering, results, job), 10)  # type: ignore[arg-type]
        assert time.time() - answering < 2 + 1, "samples resume within 2 s of Redis answering"

        # Frozen (SIGSTOP): connections stay open and nothing answers.
        assert redis.service is not None
        os.kill(redis.service.pid, signal.SIGSTOP)
        try:
            wait_until(
                lambda: httpx.get(gateway.url + "/readyz", timeout=10).status_code == 503, 15, what="frozen"
            )
            started = time.monotonic()
            page = httpx.get(gateway.url + "/", cookies=cookies, timeout=10)
            assert page.status_code == 503 and time.monotonic() - started < 5, "pages answer, never hang"
            time.sleep(max(FROZEN_FOR - 5, 0))  # a fixed wait: the freeze's length is what this test sets
        finally:
            os.kill(redis.service.pid, signal.SIGCONT)
        thawed = time.time()
        await client.expect(_fresh_sample(thawed, results, job), 10)  # type: ignore[arg-type]
        assert time.time() - thawed < 2 + 1
        assert httpx.get(gateway.url + "/readyz").status_code == 200

        later, done = await collect_job(client, job, seconds + 60)
        results += later
        assert [r["seq"] for r in results] == list(range(1, 51)), "every result once, in order"
        assert sorted(r["host"] for r in results) == sorted(f"127.0.0.{n}" for n in range(2, 52))
        assert done["summary"] == {"ok": 50}
        ran = [row["host"] for row in fleet.commands(tag)]
        assert len(ran) == 50 and len(set(ran)) == 50, "no host ran the command twice"
        for service in (*agents, worker, gateway.service):
            assert service.alive(), f"{service} died"
    finally:
        await client.close()
        gateway.stop()
        worker.stop()
        for agent in agents:
            agent.stop()
        redis.stop()


async def test_a_killed_pubsub_connection_is_resubscribed_within_two_seconds(
    stack: Stack, tokens: Tokens
) -> None:
    client = await WsClient.open(stack.gateway.ws_url, tokens.viewer)
    admin = sync_redis.Redis.from_url(stack.redis_url)
    try:
        await client.send({"type": "subscribe", "topics": ["cpu"]})
        await client.expect(lambda f: f["type"] == "cpu", 10)
        killed = admin.client_kill_filter(_type="pubsub")
        assert killed >= 1
        at = time.time()
        await client.expect(lambda f: f["type"] == "cpu" and f["ts"] > at + 0.1, 5)
        assert time.time() - at < 2.5, "resubscribed and relaying within 2 s"
    finally:
        admin.close()
        await client.close()


async def test_a_killed_agent_goes_offline_then_comes_back_with_its_history_and_a_gap(
    stack: Stack, tokens: Tokens, logs: Path
) -> None:
    interval = 0.5
    agent = start_agent("agent-killed", stack.users.url("agent"), logs, interval)
    client = await WsClient.open(stack.gateway.ws_url, tokens.viewer)

    def state(frame: Frame, online: bool) -> bool:
        return frame["type"] == "hosts" and any(
            h["host"] == "agent-killed" and h["online"] is online for h in frame["hosts"]
        )

    try:
        await client.send({"type": "subscribe", "topics": ["hosts"]})
        await client.expect(lambda f: state(f, True), 10)
        await client.send({"type": "subscribe", "topics": ["cpu"], "hosts": ["agent-killed"]})
        await client.expect(lambda f: f["type"] == "cpu" and f["host"] == "agent-killed" and f["n"] >= 4, 10)
        await client.send({"type": "unsubscribe", "topics": ["cpu"]})
        agent.kill()
        killed = time.monotonic()
        await client.expect(lambda f: state(f, False), 10)
        assert time.monotonic() - killed <= 3 * interval + 1.0, "offline within three intervals"
        # Offline means no sample for three intervals (by the clock samples carry), so the agent has
        # already been away longer than the gap asserted below: no need to stay away longer.
        agent = start_agent("agent-killed", stack.users.url("agent"), logs, interval)
        await client.expect(lambda f: state(f, True), 10)
        await client.send({"type": "subscribe", "topics": ["cpu"], "hosts": ["agent-killed"]})
        history = await client.expect(lambda f: f["type"] == "history" and f["host"] == "agent-killed", 10)
        samples = history["samples"]
        gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(samples)]
        # History from before the kill is kept; the time it was away shows as a gap, which the
        # dashboard draws as a break in the line rather than a straight line across it.
        assert max(gaps) > 3 * interval, [(s["ts"], s.get("n")) for s in samples]
        # Samples read back from the stored tier carry no number; live ones the gateway kept do.
        numbers = [s["n"] for s in samples if "n" in s]
        assert not numbers or any(b <= a for a, b in itertools.pairwise(numbers)), numbers  # restarted
    finally:
        await client.close()
        agent.stop()


async def test_a_lost_subscription_is_reported_as_a_gap_so_nothing_stored_is_missed(tmp_path: Path) -> None:
    """Guarantee: pub/sub is at-most-once, so whoever relies on it hears when it may have missed
    something (the gateway then re-reads every watched job), whether redis-py reconnected the
    subscription by itself (a killed connection) or the broker was away (a restart)."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    admin = sync_redis.Redis.from_url(redis_server.url)
    try:
        async with create_broker(redis_server.url) as broker, broker.subscribe(["gap-test"]) as events:
            await broker.publish("gap-test", "before")
            assert (await asyncio.wait_for(anext(events), 5)).data == "before"

            assert admin.client_kill_filter(_type="pubsub") == 1
            await broker.publish("gap-test", "after a kill")  # may or may not be missed: a GAP first
            assert await asyncio.wait_for(anext(events), 10) is GAP

            redis_server.kill()
            redis_server.start()
            admin = sync_redis.Redis.from_url(redis_server.url)
            got: list[Event] = []
            while GAP not in got:
                got.append(await asyncio.wait_for(anext(events), 20))
            await broker.publish("gap-test", "after a restart")
            while got[-1].data != "after a restart":
                got.append(await asyncio.wait_for(anext(events), 5))
    finally:
        admin.close()
        redis_server.stop()
