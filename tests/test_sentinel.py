"""Redis Sentinel: every service follows the master through a failover."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetdeck_common.broker.sentinel import parse_sentinel_url
from testbed.procs import start_agent, start_gateway, start_worker, wait_until
from tests.support.jobs import collect_job
from tests.support.sentinel import SentinelSet
from tests.support.stacks import Fleet, Tokens
from tests.support.wsclient import Frame, WsClient


def test_sentinel_urls_parse_and_bad_ones_say_why() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2")
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (parsed.service, parsed.db, parsed.password) == ("mymaster", 2, "s3cret")
    with pytest.raises(ValueError, match="name the Sentinel service"):
        parse_sentinel_url("redis+sentinel://10.0.0.1:26379")
    with pytest.raises(ValueError, match="port must be a number"):
        parse_sentinel_url("redis+sentinel://10.0.0.1:x/m")


@pytest.mark.ssh
async def test_a_master_failover_loses_no_sample_stream_and_no_result(
    tmp_path: Path, tokens: Tokens, fleet: Fleet, record_property: Callable[[str, object], None]
) -> None:
    with contextlib.ExitStack() as started:  # what started is stopped, even when a later start fails
        sentinels = SentinelSet(tmp_path)
        started.callback(sentinels.stop)
        sentinels.start()
        url = sentinels.url
        agent = start_agent("sentinel-host", url, tmp_path, 0.5)
        started.callback(agent.stop)
        worker = start_worker(url, tmp_path, "w-sentinel", **fleet.worker_env())
        started.callback(worker.stop)
        # Three services start at once; beside another test run a gateway took over 20 s to listen.
        gateway = start_gateway(url, tmp_path, tokens.file, name="gateway-sentinel", within=60)
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
