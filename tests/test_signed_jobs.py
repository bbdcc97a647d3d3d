"""Signed jobs on real processes (Redis, the gateway and the worker, the SSH fleet): with
FLEETDECK_JOB_KEY_FILE on both sides a job written into Redis by hand runs on no host and is
audited refused, a replayed signed job runs once, different keys refuse every job visibly, the
key is nowhere in Redis or the logs, and a worker given a bad key file does not start."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from fleetdeck_common.audit import AuditEntry
from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import create_broker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.jobs.keys import QUEUE
from fleetdeck_common.jobs.signing import JobKey, sign
from fleetdeck_common.messages import FINISHED_STATES, Job
from testbed.procs import BIN, Gateway, RedisServer, Service, start_gateway, start_worker
from tests.support.jobs import run_job
from tests.support.stacks import Fleet, Tokens
from tests.support.waiting import eventually
from tests.support.wsclient import WsClient

pytestmark = [pytest.mark.ssh, pytest.mark.redis]

HOSTS = "127.0.0.2-3"


def marker() -> str:
    return f"signed-{uuid.uuid4().hex[:10]}"


def key_file(directory: Path, name: str = "job.key") -> tuple[Path, bytes]:
    secret = os.urandom(32)
    path = directory / name
    path.write_bytes(secret)
    path.chmod(0o600)
    return path, secret


@dataclass
class SignedStack:
    redis: RedisServer
    gateway: Gateway
    worker: Service
    secret: bytes  # the worker's key


@contextlib.contextmanager
def signed_stack(
    workdir: Path, tokens: Tokens, fleet: Fleet, name: str, gateway_key: Path, worker_key: Path
) -> Iterator[SignedStack]:
    """Its own Redis, a worker and a gateway, each given a job key file."""
    redis = RedisServer(workdir)
    redis.start()
    worker = start_worker(
        redis.url, workdir, name, **fleet.worker_env(FLEETDECK_JOB_KEY_FILE=str(worker_key))
    )
    try:
        gateway = start_gateway(
            redis.url, workdir, tokens.file, name=f"gateway-{name}", FLEETDECK_JOB_KEY_FILE=str(gateway_key)
        )
        try:
            yield SignedStack(redis, gateway, worker, worker_key.read_bytes())
        finally:
            gateway.stop()
    finally:
        worker.stop()
        redis.stop()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens, fleet: Fleet) -> Iterator[SignedStack]:
    workdir = tmp_path_factory.mktemp("signed")
    path, _secret = key_file(workdir)
    with signed_stack(workdir, tokens, fleet, "w-signed", path, path) as stack:
        yield stack


@contextlib.asynccontextmanager
async def stores(url: str) -> AsyncIterator[tuple[JobStore, AuditStore]]:
    async with create_broker(url) as broker:
        yield JobStore(broker), AuditStore(broker)


async def finished(store: JobStore, job_id: str, timeout: float = 30) -> Job:
    found: list[Job] = []

    async def ended() -> bool:
        job = await store.load(job_id)
        found[:] = [job] if job is not None and job.state in FINISHED_STATES else []
        return bool(found)

    await eventually(ended, timeout, f"job {job_id} to finish")
    return found[0]


async def refusals(audit: AuditStore, job_id: str, count: int = 1) -> list[AuditEntry]:
    found: list[AuditEntry] = []

    async def audited() -> bool:
        entries = (await audit.page(limit=1000)).entries
        found[:] = [e for e in entries if e.action == "job_refused" and e.job == job_id]
        return len(found) >= count

    await eventually(audited, 30, f"the job_refused entry of {job_id}")
    return found


async def signature_of(url: str, job_id: str) -> str:
    """The signature the gateway put in the job's queue entry."""
    async with create_broker(url) as broker:
        entries = await broker.stream_range(QUEUE)
    return next(e.fields["sig"] for e in entries if e.fields.get("job") == job_id)


async def operator(stack: SignedStack, tokens: Tokens) -> WsClient:
    client = await WsClient.open(stack.gateway.ws_url, tokens.operator)
    await client.expect_type("hello")
    await client.send({"type": "subscribe", "topics": ["jobs"]})
    return client


async def test_a_signed_job_runs_and_the_key_is_nowhere_in_redis_or_the_logs(
    signed: SignedStack, tokens: Tokens, fleet: Fleet
) -> None:
    tag = marker()
    client = await operator(signed, tokens)
    job, results, done = await run_job(client, HOSTS, f"echo {tag}")
    await client.close()
    assert sorted(r["status"] for r in results) == ["ok", "ok"], results
    assert done["summary"] == {"ok": 2}
    assert len(fleet.commands(tag)) == 2
    assert "sig" not in job  # the signature stays in the queue entry
    secret = signed.secret
    connection = aioredis.Redis.from_url(signed.redis.url)
    async with connection:
        async for name in connection.scan_iter():
            dumped = await connection.dump(name)
            if dumped is None:
                continue  # expired since the scan listed it
            assert secret not in dumped and secret.hex().encode() not in dumped, name
    for log in (signed.worker.log(), signed.gateway.service.log()):
        assert secret.hex() not in log
        assert secret.decode("latin-1") not in log


async def test_a_forged_job_runs_on_no_host_and_is_audited_refused(
    signed: SignedStack, tokens: Tokens, fleet: Fleet
) -> None:
    # A real job, then copies of it written into Redis by hand: the command changed and a fresh
    # id, once with the real job's signature and once with none.
    client = await operator(signed, tokens)
    real, _results, _done = await run_job(client, HOSTS, f"echo {marker()}")
    await client.close()
    signature = await signature_of(signed.redis.url, real["job"])
    tag = marker()
    async with stores(signed.redis.url) as (store, audit):
        original = await store.load(real["job"])
        assert original is not None
        now = time.time()
        for copied_signature, reason in ((signature, "bad signature"), (None, "no signature")):
            forged = original.model_copy(
                update={
                    "job": secrets.token_hex(8),
                    "command": f"echo {tag}",
                    "state": "queued",
                    "summary": None,
                    "finished": None,
                    "ts": now,
                    "queued_until": now + 60,
                }
            )
            await store.submit(forged, copied_signature)
            ended = await finished(store, forged.job)
            assert ended.state == "cancelled"
            assert ended.error == f"refused by the worker: {reason}"
            stored = await store.read_results(forged.job)
            assert [(r.host, r.status, r.error) for r in stored.results] == [
                (host, "cancelled", f"refused by the worker: {reason}") for host in ("127.0.0.2", "127.0.0.3")
            ]
            assert stored.done is not None and stored.done.error == f"refused by the worker: {reason}"
            [entry] = await refusals(audit, forged.job)
            assert (entry.outcome, entry.reason, entry.user) == ("refused", reason, original.by)
            assert entry.command == f"echo {tag}" and entry.hosts == 2
    assert fleet.commands(tag) == []
    assert "refused (bad signature)" in signed.worker.log()


async def test_a_replayed_signed_job_runs_once(signed: SignedStack, tokens: Tokens, fleet: Fleet) -> None:
    tag = marker()
    client = await operator(signed, tokens)
    job, _results, done = await run_job(client, HOSTS, f"echo {tag}")
    await client.close()
    assert done["summary"] == {"ok": 2}
    signature = await signature_of(signed.redis.url, job["job"])
    async with stores(signed.redis.url) as (store, audit):
        original = await store.load(job["job"])
        assert original is not None
        # Put the record back as it was queued (its signature still verifies) and queue it again.
        await store.announce(
            original.model_copy(update={"state": "queued", "summary": None, "finished": None})
        )
        async with create_broker(signed.redis.url) as broker:
            await broker.stream_add(QUEUE, {"job": job["job"], "sig": signature})
        [entry] = await refusals(audit, job["job"])
        assert entry.reason == "replayed job id"
        stored = await store.read_results(job["job"])
    assert [r.status for r in stored.results] == ["ok", "ok"]  # the job's own results stand
    assert len(fleet.commands(tag)) == 2  # once per host, never again


async def test_a_signed_job_without_a_queue_deadline_is_refused_as_too_old(
    signed: SignedStack, fleet: Fleet
) -> None:
    tag = marker()
    now = time.time()
    job = Job(
        job=secrets.token_hex(8),
        targets=HOSTS,
        command=f"echo {tag}",
        hosts=2,
        by="alice",
        ts=now - 3600,
        state="queued",
        timeout=10,
    )
    async with stores(signed.redis.url) as (store, audit):
        await store.submit(job, sign(JobKey(signed.secret), job))
        ended = await finished(store, job.job)
        assert ended.error == "refused by the worker: older than the queue timeout"
        [entry] = await refusals(audit, job.job)
        assert entry.reason == "older than the queue timeout"
    assert fleet.commands(tag) == []


async def test_different_keys_refuse_every_job_visibly(tmp_path: Path, tokens: Tokens, fleet: Fleet) -> None:
    gateway_key, _ = key_file(tmp_path, "gateway.key")
    worker_key, _ = key_file(tmp_path, "worker.key")
    tag = marker()
    with signed_stack(tmp_path, tokens, fleet, "w-otherkey", gateway_key, worker_key) as stack:
        client = await operator(stack, tokens)
        job, results, done = await run_job(client, HOSTS, f"echo {tag}")
        await client.close()
        assert [(r["host"], r["status"], r["error"]) for r in results] == [
            (host, "cancelled", "refused by the worker: bad signature") for host in ("127.0.0.2", "127.0.0.3")
        ]
        assert done["summary"] == {"cancelled": 2}
        assert done["error"] == "refused by the worker: bad signature"
        async with stores(stack.redis.url) as (store, audit):
            assert (await finished(store, job["job"])).state == "cancelled"
            [entry] = await refusals(audit, job["job"])
            assert entry.reason == "bad signature"
    assert fleet.commands(tag) == []


@pytest.mark.parametrize(
    ("content", "mode", "sentence"),
    [
        (None, 0o600, "does not exist"),
        (b"", 0o600, "is empty"),
        (b"k" * 32, 0o644, "is readable by group or others (mode 0644)"),
    ],
)
@pytest.mark.parametrize("service", ["fleetdeck-worker", "fleetdeck-gateway"])
def test_a_service_with_a_bad_key_file_refuses_to_start(
    tmp_path: Path, service: str, content: bytes | None, mode: int, sentence: str
) -> None:
    path = tmp_path / "job.key"
    if content is not None:
        path.write_bytes(content)
        path.chmod(mode)
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "FLEETDECK_JOB_KEY_FILE": str(path)}
    run = subprocess.run([str(BIN / service)], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "FLEETDECK_JOB_KEY_FILE" in run.stderr
    assert f"the job key file {path} {sentence}" in run.stderr
