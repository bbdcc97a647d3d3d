"""Rotating the job key on real processes (Redis, the worker, the SSH fleet): a job signed with
the old key and queued before `redis-users --rotate` still runs once the worker restarts on the
new key; one signed with a key that is neither, or with the old key but queued to run past the
rotation's one queue timeout, is refused and runs on no host."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from fleetdeck_common.jobs.signing import JobKey, sign
from fleetdeck_common.messages import Job
from testbed.procs import RedisServer, start_worker
from tests.support.stacks import Fleet
from tests.test_cli import fleetdeck
from tests.test_signed_jobs import HOSTS, finished, marker, refusals, stores

pytestmark = [pytest.mark.ssh, pytest.mark.redis]


def _job(tag: str, queued_until: float) -> Job:
    return Job(
        job=secrets.token_hex(8),
        targets=HOSTS,
        command=f"echo {tag}",
        hosts=2,
        by="alice",
        ts=time.time(),
        state="queued",
        timeout=10,
        queued_until=queued_until,
    )


async def test_a_job_queued_before_a_rotation_runs_after_it_and_other_keys_are_refused(
    tmp_path: Path, fleet: Fleet
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        users = tmp_path / "users"
        made = fleetdeck("redis-users", str(users), "--redis", redis.url)
        assert made.returncode == 0, made.stderr
        key_file = users / "job.key"
        old = JobKey(key_file.read_bytes())
        env = fleet.worker_env(FLEETDECK_JOB_KEY_FILE=str(key_file), FLEETDECK_JOB_QUEUE_TIMEOUT="60")
        start_worker(redis.url, tmp_path, "w-before", **env).stop()  # a worker ran on the old key
        kept, neither, late = marker(), marker(), marker()
        now = time.time()
        queued = _job(kept, now + 60)  # queued by a gateway on the old key, waiting for a worker
        async with stores(redis.url) as (store, audit):
            await store.submit(queued, sign(old, queued))
            rotated = fleetdeck("redis-users", str(users), "--redis", redis.url, "--rotate")
            assert rotated.returncode == 0, rotated.stderr
            assert (users / "job.key.previous").read_bytes() == old.secret
            forged = _job(neither, now + 60)
            await store.submit(forged, sign(JobKey(os.urandom(32)), forged))
            # The old key after the rotation, with a deadline past the rotation's queue timeout.
            stale = _job(late, key_file.stat().st_mtime + 120)
            await store.submit(stale, sign(old, stale))
            worker = start_worker(redis.url, tmp_path, "w-after", **env)
            try:
                ran = await finished(store, queued.job)
                assert (ran.state, ran.summary) == ("done", {"ok": 2})
                for refused in (forged, stale):
                    ended = await finished(store, refused.job)
                    assert ended.error == "refused by the worker: bad signature"
                    [entry] = await refusals(audit, refused.job)
                    assert entry.reason == "bad signature"
            finally:
                worker.stop()
        assert len(fleet.commands(kept)) == 2
        assert fleet.commands(neither) == [] and fleet.commands(late) == []
    finally:
        redis.stop()
