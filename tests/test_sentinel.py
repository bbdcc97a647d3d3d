"""Redis Sentinel: every service follows the master through a failover, each on its own Redis user,
with replicas and sentinels on theirs and Sentinel behind its own password."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetdeck_common.broker import BrokerUnavailable, check_url, create_broker
from fleetdeck_common.broker.sentinel import parse_sentinel_url
from testbed.procs import start_agent, start_gateway, start_worker, wait_until
from tests.support.jobs import collect_job
from tests.support.sentinel import SentinelSet
from tests.support.stacks import Fleet, Tokens
from tests.support.wsclient import Frame, WsClient


def test_sentinel_urls_parse_and_bad_ones_say_why() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2")
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (parsed.service, parsed.db, parsed.password, parsed.username) == ("mymaster", 2, "s3cret", None)
    assert parse_sentinel_url("redis+sentinel://10.0.0.1/m").password is None  # no credentials at all
    with pytest.raises(ValueError, match="name the Sentinel service"):
        parse_sentinel_url("redis+sentinel://10.0.0.1:26379")
    with pytest.raises(ValueError, match="port must be a number"):
        parse_sentinel_url("redis+sentinel://10.0.0.1:x/m")


def test_a_sentinel_url_carries_a_user_and_sentinels_own_credentials() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://fleetdeck-agent:p%2Fw%40x@s1:26379,s2/fleetdeck/0"
        "?sentinel_password=s%26p&sentinel_username=watcher"
    )
    assert (parsed.username, parsed.password) == ("fleetdeck-agent", "p/w@x")
    assert (parsed.sentinel_username, parsed.sentinel_password) == ("watcher", "s&p")
    assert parsed.sentinels == (("s1", 26379), ("s2", 26379))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://fleetdeck-agent@s1/m", "user 'fleetdeck-agent' has no password"),
        ("redis+sentinel://fleetdeck-agent:@s1/m", "user 'fleetdeck-agent' has no password"),
        ("redis+sentinel://s1/m?sentinel_pasword=x", "unknown option 'sentinel_pasword'"),
        ("redis+sentinel://s1/m?sentinel_password=", "sentinel_password is empty"),
        ("redis+sentinel://s1/m?sentinel_username=u", "sentinel_username needs sentinel_password"),
    ],
)
def test_a_bad_sentinel_url_is_a_sentence(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_url(url)  # what every service's settings run before it starts


async def test_a_wrong_sentinel_password_is_named_not_hung(tmp_path: Path) -> None:
    """Sentinels with a password of their own answer a URL without it, or with another, with
    a refusal the service can show, at once."""
    sentinels = SentinelSet(tmp_path)
    try:
        sentinels.start()
        good = sentinels.urls["agent"]
        wrong = good.replace(f"sentinel_password={sentinels.sentinel_password}", "sentinel_password=nope")
        missing = good.partition("?")[0]
        for url, says in (
            (missing, "sentinels want a password"),
            (wrong, "refused the URL's sentinel_password"),
        ):
            async with create_broker(url, timeout=5) as broker:
                started = time.monotonic()
                assert not await broker.ping()
                assert says in broker.down_reason  # what /readyz and the log say
                with pytest.raises(BrokerUnavailable, match=says):
                    await broker.get("anything")
                assert time.monotonic() - started < 5  # refused at once, not waited out
        async with create_broker(sentinels.urls["gateway"]) as broker:
            assert await broker.ping()
    finally:
        sentinels.stop()


@pytest.mark.ssh
async def test_a_master_failover_loses_no_sample_stream_and_no_result(
    tmp_path: Path, tokens: Tokens, fleet: Fleet, record_property: Callable[[str, object], None]
) -> None:
    with contextlib.ExitStack() as started:  # what started is stopped, even when a later start fails
        sentinels = SentinelSet(tmp_path)
        started.callback(sentinels.stop)
        sentinels.start()
        urls = sentinels.urls  # each service its own user, and Sentinel's password
        agent = start_agent("sentinel-host", urls["agent"], tmp_path, 0.5)
        started.callback(agent.stop)
        worker = start_worker(urls["worker"], tmp_path, "w-sentinel", **fleet.worker_env())
        started.callback(worker.stop)
        # Three services start at once; beside another test run a gateway took over 20 s to listen.
        gateway = start_gateway(urls["gateway"], tmp_path, tokens.file, name="gateway-sentinel", within=60)
        started.callback(gateway.stop)
        client = await WsClient.open(gateway.ws_url, tokens.operator)
        await client.expect_type("hello")
        await client.send({"type": "subscribe", "topics": ["cpu"], "ref": "s"})
        await client.expect(lambda f: f["type"] == "cpu" and f["host"] == "sentinel-host", 30)
        tag = f"sent-{uuid.uuid4().hex[:8]}"
        await client.send(
            {"type": "exec", "targets": "127.0.0.2-41", "command": f"echo {tag}; sleep 3", "ref": "j"}
        )
        job = (await client.expect(lambda f: f.get("ref") == "j"))["job"]
        wait_until(lambda: len(fleet.commands(tag)) >= 20, 20, what="the job running")
        assert sentinels.refused(sentinels.master()) == []  # the replica's PSYNC and all: allowed
        old = sentinels.kill_master()
        killed = time.monotonic()
        with sentinels.explained():
            wait_until(lambda: sentinels.master() != old, 30, what="the sentinels promoting the replica")
            record_property("promoted_after_s", round(time.monotonic() - killed, 2))
            # Samples resume on the same socket (results and `done` arriving meanwhile are kept).
            early: list[Frame] = []

            def fresh_sample(frame: Frame) -> bool:
                if frame.get("job") == job and frame["type"] in ("result", "done"):
                    early.append(frame)
                return bool(frame["type"] == "cpu" and frame["ts"] > time.time() - 1)

            await client.expect(fresh_sample, 30)
            record_property("samples_resumed_after_s", round(time.monotonic() - killed, 2))
            assert time.monotonic() - killed < 20
            if early and early[-1]["type"] == "done":
                results, done = early[:-1], early[-1]
            else:
                later, done = await collect_job(client, job, 90)
                results = early + later
        assert [r["seq"] for r in results] == list(range(1, 41))  # every result once, in order
        assert sorted(r["host"] for r in results) == sorted(f"127.0.0.{n}" for n in range(2, 42))
        assert sum(done["summary"].values()) == 40
        ran = [row["host"] for row in fleet.commands(tag)]
        assert len(ran) == len(set(ran))  # nothing ran twice
        await client.close()
        # On the new master, every service came back on its own user and the sentinels on theirs,
        # and nothing any of them sent (replication and the failover too) was refused.
        new = sentinels.master()
        users = {"fleetdeck-gateway", "fleetdeck-worker", "fleetdeck-agent", "fleetdeck-sentinel"}
        # The sentinels link to the promoted master on their own schedule, after it is promoted.
        wait_until(lambda: sentinels.users_connected(new) >= users, 20, what="every user on the new master")
        assert "default" not in sentinels.users_connected(new)
        assert sentinels.refused(new) == []
