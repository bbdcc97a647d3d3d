"""Batch exec end to end on real SSH servers: gateway -> stream -> worker -> SSH -> results."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetdeck_common.jobs import JOB_INDEX_SIZE
from testbed.procs import start_worker, wait_until
from tests.support.jobs import collect_job, run_job
from tests.support.rawws import raw_ws_that_never_reads
from tests.support.stacks import (
    BLACKHOLE,
    CHANGED_HOST_KEY,
    OPENSSH_HOST,
    REJECTS_KEY,
    UNKNOWN_HOST_KEY,
    UNREACHABLE,
    ExecStack,
    Tokens,
    private_stack,
)
from tests.support.stores import job_store
from tests.support.wsclient import Frame, WsClient

pytestmark = pytest.mark.ssh


def marker() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def operator(exec_stack: ExecStack, tokens: Tokens) -> Any:
    client = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    await client.expect_type("hello")
    yield client
    await client.close()


async def test_a_100_host_job_returns_exactly_100_results_in_seq_order(
    exec_stack: ExecStack, operator: WsClient
) -> None:
    tag = marker()
    job, results, done = await run_job(operator, "127.0.0.2-101", f"echo {tag} $FLEET_HOST")
    assert job["state"] == "queued" and job["hosts"] == 100 and job["by"] == "alice"
    assert [r["seq"] for r in results] == list(range(1, 101))
    assert sorted(r["host"] for r in results) == sorted(f"127.0.0.{i}" for i in range(2, 102))
    assert all(r["status"] == "ok" and r["exit_code"] == 0 for r in results)
    assert all(r["stdout"] == f"{tag} {r['host']}\n" for r in results)
    assert done["summary"] == {"ok": 100}
    # Outputs differ only by each host's own address: one group; each host ran the command once.
    assert [(g["hosts"], g["count"], g["output"]) for g in done["groups"]] == [
        ("127.0.0.[2-101]", 100, f"{tag} {{host}}\n")
    ]
    assert done["retry_targets"] == ""
    ran = Counter(row["host"] for row in exec_stack.fleet.commands(tag))
    assert len(ran) == 100 and set(ran.values()) == {1}


async def test_every_kind_of_host_gets_the_right_status(exec_stack: ExecStack, operator: WsClient) -> None:
    tag = marker()
    targets = (
        f"127.0.0.2,127.0.0.3,{REJECTS_KEY},{UNKNOWN_HOST_KEY},{BLACKHOLE},{UNREACHABLE},{CHANGED_HOST_KEY},"
        f"{OPENSSH_HOST}"
    )
    command = f'echo {tag}; echo oops >&2; [ "$FLEET_HOST" = 127.0.0.3 ] && exit 3; exit 0'
    _job, results, done = await run_job(operator, targets, command)
    by_host = {r["host"]: r for r in results}
    assert by_host["127.0.0.2"]["status"] == "ok"
    assert by_host["127.0.0.2"]["stdout"] == f"{tag}\n" and by_host["127.0.0.2"]["stderr"] == "oops\n"
    assert (by_host["127.0.0.3"]["status"], by_host["127.0.0.3"]["exit_code"]) == ("failed", 3)
    assert by_host[REJECTS_KEY]["status"] == "auth_failed"
    assert by_host[UNKNOWN_HOST_KEY]["status"] == "error"
    assert "host key" in by_host[UNKNOWN_HOST_KEY]["error"]
    assert by_host[CHANGED_HOST_KEY]["status"] == "error"
    assert "host key" in by_host[CHANGED_HOST_KEY]["error"]
    assert by_host[BLACKHOLE]["status"] == "unreachable"
    assert by_host[UNREACHABLE]["status"] == "unreachable"
    # Says what was tried, and nothing host-specific beyond that, so such hosts group together.
    tried = f"(tried root@{UNREACHABLE} port {exec_stack.fleet.port})"
    assert by_host[UNREACHABLE]["error"] == f"connection refused {tried}"
    assert (by_host[OPENSSH_HOST]["status"], by_host[OPENSSH_HOST]["stdout"]) == ("ok", f"{tag}\n")
    assert done["summary"] == {"ok": 2, "failed": 1, "unreachable": 2, "auth_failed": 1, "error": 2}
    assert done["retry_targets"] == f"127.0.0.3,{REJECTS_KEY}-6"
    # Hosts that refused us, or never answered, ran nothing.
    ran = {row["host"] for row in exec_stack.fleet.commands(tag)}
    assert ran == {"127.0.0.2", "127.0.0.3", OPENSSH_HOST}


async def test_timeouts_and_large_output(operator: WsClient) -> None:
    _job, results, _done = await run_job(operator, "127.0.0.2", "echo started; sleep 30", timeout=1)
    assert results[0]["status"] == "timeout" and results[0]["exit_code"] is None
    assert results[0]["stdout"] == "started\n"
    assert results[0]["duration_ms"] < 5000
    _job, results, _done = await run_job(
        operator, "127.0.0.2", "head -c 300000 /dev/zero | tr '\\0' x; exit 1"
    )
    result = results[0]
    assert result["truncated"] is True and len(result["stdout"]) == 65536 and result["exit_code"] == 1


async def test_cancel_stops_running_hosts_and_pending_ones_never_start(
    exec_stack: ExecStack, operator: WsClient
) -> None:
    tag = marker()
    ref = "cancel-me"
    await operator.send(
        {"type": "exec", "targets": "127.0.0.2-101", "command": f"echo {tag}; sleep 30", "ref": ref}
    )
    job = await operator.expect(lambda f: f.get("ref") == ref)
    # 64 hosts run at once (FLEETDECK_EXEC_CONCURRENCY); wait until they have started.
    wait_until(lambda: len(exec_stack.fleet.commands(tag)) >= 64, 20, what="64 hosts running")
    await operator.send({"type": "cancel", "job": job["job"], "ref": "c1"})
    results, done = await collect_job(operator, job["job"], 20)
    assert done["summary"] == {"cancelled": 100}
    assert len(results) == 100 and [r["seq"] for r in results] == list(range(1, 101))
    assert len(exec_stack.fleet.commands(tag)) == 64
    record = await operator.expect(
        lambda f: f["type"] == "job" and f["job"] == job["job"] and f["state"] == "cancelled", 10
    )
    assert record["cancelled_by"] == "alice"


async def test_two_workers_share_the_jobs(exec_stack: ExecStack, operator: WsClient, logs: Path) -> None:
    users = exec_stack.users
    second = start_worker(
        users.url("worker"),
        logs,
        "w-second",
        **exec_stack.fleet.worker_env(FLEETDECK_JOB_KEY_FILE=users.job_key),
    )
    try:
        wait_until(lambda: "taking jobs" in second.log(), 20, what="the second worker")
        # One worker runs at most 8 jobs at once, so 12 long ones cannot all go to one of them.
        jobs: list[str] = []
        finished: set[str] = set()

        def track(frame: Frame, ref: str | None = None) -> bool:
            if frame["type"] == "done":
                finished.add(frame["job"])
            if ref is not None:
                return frame["type"] == "job" and frame.get("ref") == ref
            return set(jobs) <= finished

        for _ in range(12):
            ref = uuid.uuid4().hex[:6]
            await operator.send({"type": "exec", "targets": "127.0.0.2-4", "command": "sleep 2", "ref": ref})
            jobs.append((await operator.expect(functools.partial(track, ref=ref)))["job"])
        if not set(jobs) <= finished:
            await operator.expect(track, 60)
        async with job_store(exec_stack.redis_url) as store:
            owners = {w for job in jobs for w in (await store.started(job)).values()}
        assert owners == {"w-main", "w-second"}
    finally:
        assert second.stop() == 0


async def test_watch_after_a_reconnect_replays_exactly_the_missed_results(
    exec_stack: ExecStack, tokens: Tokens
) -> None:
    first = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    await first.expect_type("hello")
    await first.send(
        {
            "type": "exec",
            "targets": "127.0.0.2-31",
            "command": 'sleep "0.$(( ${FLEET_HOST##*.} % 10 ))"',
            "ref": "w",
        }
    )
    job = (await first.expect(lambda f: f.get("ref") == "w"))["job"]
    seen = [await first.expect_type("result", job=job) for _ in range(7)]
    await first.close()
    last = seen[-1]["seq"]
    second = await WsClient.open(exec_stack.gateway.ws_url, tokens.viewer)
    await second.expect_type("hello")
    await second.send({"type": "watch", "job": job, "after": last, "ref": "again"})
    assert (await second.expect(lambda f: f.get("ref") == "again"))["job"] == job
    replayed, _done = await collect_job(second, job, 30)
    assert [r["seq"] for r in replayed] == list(range(last + 1, 31))
    assert {r["host"] for r in seen} | {r["host"] for r in replayed} == {f"127.0.0.{i}" for i in range(2, 32)}
    await second.close()


@pytest.mark.parametrize(
    ("frame", "code", "fragment"),
    [
        ({"targets": "", "command": "id"}, "bad_request", "targets"),
        ({"targets": "  ", "command": "id"}, "invalid_targets", "empty"),
        ({"targets": "127.0.0.2-999", "command": "id"}, "invalid_targets", "more than 255"),
        ({"targets": "127.0.0.0/8", "command": "id"}, "invalid_targets", "too many"),
        ({"targets": "127.0.0.0/20", "command": "id"}, "invalid_targets", "more than 1024 hosts"),
        ({"targets": "127.0.0.2,10.0.0.1-100", "command": "id"}, "invalid_targets", "outside the allowed"),
        ({"targets": "127.0.0.2", "command": "x" * 9000}, "bad_request", "command"),
        ({"targets": "127.0.0.2", "command": "id", "timeout": 0}, "bad_request", "timeout"),
    ],
)
async def test_bad_exec_requests_are_refused_and_nothing_is_queued(
    exec_stack: ExecStack, operator: WsClient, frame: dict[str, Any], code: str, fragment: str
) -> None:
    async with job_store(exec_stack.redis_url) as store:
        before = await store.recent(JOB_INDEX_SIZE)
        await operator.send({"type": "exec", "ref": "bad", **frame})
        error = await operator.expect(lambda f: f.get("ref") == "bad")
        assert error["type"] == "error" and error["code"] == code and fragment in error["message"], error
        assert await store.recent(JOB_INDEX_SIZE) == before


async def test_viewers_cannot_run_and_unknown_jobs_are_not_found(
    exec_stack: ExecStack, tokens: Tokens
) -> None:
    tag = marker()
    async with job_store(exec_stack.redis_url) as store:
        queued_before = await store.recent(JOB_INDEX_SIZE)
    viewer = await WsClient.open(exec_stack.gateway.ws_url, tokens.viewer)
    await viewer.send({"type": "exec", "targets": "127.0.0.2", "command": f"echo {tag}", "ref": "v"})
    assert (await viewer.expect_type("error", ref="v"))["code"] == "forbidden"
    operator = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    for kind in ("watch", "cancel"):
        await operator.send({"type": kind, "job": "0000000000000000", "ref": kind})
        error = await operator.expect_type("error", ref=kind)
        assert error["code"] == "not_found" and "0000000000000000" in error["message"]
    async with job_store(exec_stack.redis_url) as store:
        assert await store.recent(JOB_INDEX_SIZE) == queued_before
    assert exec_stack.fleet.commands(tag) == []
    await viewer.close()
    await operator.close()


def test_http_api_runs_jobs_and_keeps_an_audit_trail(exec_stack: ExecStack, tokens: Tokens) -> None:
    tag = marker()
    operator = {"Authorization": f"Bearer {tokens.operator}"}
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    url = exec_stack.gateway.url
    response = httpx.post(
        url + "/api/jobs",
        headers=operator,
        json={"targets": "127.0.0.2-4 !127.0.0.3", "command": f"echo {tag}", "timeout": 10},
    )
    assert response.status_code == 202
    job = response.json()["job"]
    assert response.json()["hosts"] == 2

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(f"{url}/api/jobs/{job}", headers=viewer).json()
        return body if body["state"] == "done" else None

    wait_until(finished, 20, what="job done")
    body = finished()
    assert body is not None
    assert [r["host"] for r in sorted(body["results"], key=lambda r: r["seq"])] in (
        ["127.0.0.2", "127.0.0.4"],
        ["127.0.0.4", "127.0.0.2"],
    )
    assert body["summary"] == {"ok": 2} and body["by"] == "alice" and body["command"] == f"echo {tag}"
    listed = httpx.get(url + "/api/jobs", headers=viewer).json()["jobs"]
    entry = next(j for j in listed if j["job"] == job)
    assert (
        entry["summary"] == {"ok": 2} and entry["hosts"] == 2 and entry["targets"] == "127.0.0.2-4 !127.0.0.3"
    )
    bad = httpx.post(url + "/api/jobs", headers=operator, json={"targets": "8.8.8.8", "command": "id"})
    assert bad.status_code == 422 and "outside" in bad.json()["message"]


async def test_kill_9_of_a_worker_mid_job_ends_the_job_without_running_any_host_twice(
    tmp_path: Path, tokens: Tokens, exec_stack: ExecStack
) -> None:
    fleet = exec_stack.fleet
    tag = marker()
    with private_stack(tmp_path, tokens, fleet, "w-doomed", FLEETDECK_EXEC_CONCURRENCY="5") as stack:
        client = await WsClient.open(stack.gateway.ws_url, tokens.operator)
        await client.expect_type("hello")
        await client.send(
            {"type": "exec", "targets": "127.0.0.2-21", "command": f"echo {tag}; sleep 3", "ref": "k"}
        )
        job = (await client.expect(lambda f: f.get("ref") == "k"))["job"]
        wait_until(lambda: len(fleet.commands(tag)) >= 5, 20, what="the first hosts to start")
        stack.worker.kill()
        started_before_kill = {row["host"] for row in fleet.commands(tag)}
        env = fleet.worker_env(FLEETDECK_EXEC_CONCURRENCY="5")
        survivor = start_worker(stack.redis.url, tmp_path, "w-survivor", **env)
        try:
            results, done = await collect_job(client, job, 60)
        finally:
            survivor.stop()
        assert [r["seq"] for r in results] == list(range(1, 21))
        lost = {r["host"] for r in results if r["status"] == "lost"}
        assert lost == started_before_kill
        assert {r["host"] for r in results if r["status"] == "ok"} == {
            f"127.0.0.{i}" for i in range(2, 22)
        } - lost
        assert done["summary"] == {"ok": 20 - len(lost), "lost": len(lost)}
        ran = Counter(row["host"] for row in fleet.commands(tag))
        assert set(ran.values()) == {1}, ran
        await client.close()


async def test_sigterm_lets_running_hosts_finish_within_the_grace_period_then_cancels(
    tmp_path: Path, tokens: Tokens, exec_stack: ExecStack
) -> None:
    fleet = exec_stack.fleet
    tag, later_tag = marker(), marker()
    with private_stack(tmp_path, tokens, fleet, "w-term", FLEETDECK_SHUTDOWN_GRACE="3") as stack:
        worker, gateway = stack.worker, stack.gateway
        client = await WsClient.open(gateway.ws_url, tokens.operator)
        await client.expect_type("hello")
        command = f'echo {tag}; [ "$FLEET_HOST" = 127.0.0.2 ] && {{ sleep 1; echo quick; exit 0; }}; sleep 30'
        await client.send({"type": "exec", "targets": "127.0.0.2-3", "command": command, "ref": "t"})
        job = (await client.expect(lambda f: f.get("ref") == "t"))["job"]
        wait_until(lambda: len(fleet.commands(tag)) == 2, 20, what="both hosts running")
        worker.proc.terminate()
        # Stopping, the worker stops reading jobs, then waits for its running ones (the grace period).
        # A job queued now, while it still runs, is not for it: it stays queued for the next worker.
        wait_until(lambda: "waiting up to" in worker.log(), 10, what="the worker to stop reading jobs")
        submitter = await WsClient.open(gateway.ws_url, tokens.operator)
        await submitter.expect_type("hello")
        await submitter.send(
            {"type": "exec", "targets": "127.0.0.2", "command": f"echo {later_tag}", "ref": "l"}
        )
        later = (await submitter.expect(lambda f: f.get("ref") == "l"))["job"]
        assert worker.alive(), "the later job must be queued while the worker is still shutting down"
        results, _done = await collect_job(client, job, 20)
        by_host = {r["host"]: r for r in results}
        assert (by_host["127.0.0.2"]["status"], by_host["127.0.0.2"]["stdout"]) == ("ok", f"{tag}\nquick\n")
        assert by_host["127.0.0.3"]["status"] == "cancelled"
        assert worker.proc.wait(20) == 0
        # All through the shutdown the later job stayed queued, and no host ran it.
        body = httpx.get(
            f"{gateway.url}/api/jobs/{later}", headers={"Authorization": f"Bearer {tokens.viewer}"}
        ).json()
        assert body["state"] == "queued" and body["results"] == []
        assert fleet.commands(later_tag) == []
        # The next worker runs it, exactly once.
        successor = start_worker(stack.redis.url, tmp_path, "w-successor", **fleet.worker_env())
        try:
            results, done = await collect_job(submitter, later, 30)
        finally:
            successor.stop()
        assert [(r["host"], r["status"], r["stdout"]) for r in results] == [
            ("127.0.0.2", "ok", f"{later_tag}\n")
        ]
        assert done["summary"] == {"ok": 1}
        assert Counter(row["host"] for row in fleet.commands(later_tag)) == {"127.0.0.2": 1}
        await submitter.close()
        await client.close()


async def test_the_jobs_topic_announces_every_state(
    exec_stack: ExecStack, tokens: Tokens, operator: WsClient
) -> None:
    viewer = await WsClient.open(exec_stack.gateway.ws_url, tokens.viewer)
    await viewer.send({"type": "subscribe", "topics": ["jobs"], "ref": "j"})
    await viewer.expect_type("subscribed", ref="j")
    job, _results, _done = await run_job(operator, "127.0.0.2-3", "true")
    states = []

    def follow(frame: Frame) -> bool:
        if frame["type"] == "job" and frame["job"] == job["job"]:
            states.append(frame["state"])
            return bool(frame["state"] == "done")
        return False

    final = await viewer.expect(follow, 20)
    assert states == ["queued", "running", "done"]
    assert final["summary"] == {"ok": 2} and final["by"] == "alice" and final["finished"] >= final["ts"]
    await viewer.close()


async def test_a_cancel_missed_on_the_control_channel_is_still_honoured(
    exec_stack: ExecStack, operator: WsClient
) -> None:
    tag = marker()
    await operator.send(
        {"type": "exec", "targets": "127.0.0.2-4", "command": f"echo {tag}; sleep 30", "ref": "m"}
    )
    job = (await operator.expect(lambda f: f.get("ref") == "m"))["job"]
    wait_until(lambda: len(exec_stack.fleet.commands(tag)) == 3, 20, what="three hosts running")
    # Only the key, no control message: as if the worker's subscription was down at that moment.
    async with job_store(exec_stack.redis_url) as store:
        await store.mark_cancelled(job, "ops")
    done = await operator.expect(lambda f: f["type"] == "done" and f["job"] == job, 15)
    assert done["summary"] == {"cancelled": 3}
    record = await operator.expect(
        lambda f: f["type"] == "job" and f["job"] == job and f["state"] == "cancelled"
    )
    assert record["cancelled_by"] == "ops"


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_a_client_too_slow_for_results_is_closed_and_others_miss_nothing(
    exec_stack: ExecStack, tokens: Tokens, operator: WsClient
) -> None:
    url = exec_stack.gateway.url
    before = _metric(url, "fleetdeck_gateway_slow_disconnects_total")
    # 120 hosts x 128 KiB of output: far more than one client's 8 MiB outbox and the socket buffers.
    command = "head -c 65536 /dev/zero | tr '\\0' o; head -c 65536 /dev/zero | tr '\\0' e >&2"
    await operator.send({"type": "exec", "targets": "127.0.0.2-121", "command": command, "ref": "big"})
    job = (await operator.expect(lambda f: f.get("ref") == "big"))["job"]
    slow = raw_ws_that_never_reads(exec_stack.gateway.port, tokens.viewer, {"type": "watch", "job": job})
    try:
        results, done = await collect_job(operator, job, 90)
        assert [r["seq"] for r in results] == list(range(1, 121))
        assert all(len(r["stdout"]) == 65536 and len(r["stderr"]) == 65536 for r in results)
        assert done["summary"] == {"ok": 120}
        wait_until(
            lambda: _metric(url, "fleetdeck_gateway_slow_disconnects_total") > before,
            30,
            what="the slow client to be closed",
        )
        assert _metric(url, "fleetdeck_gateway_queued_bytes") < 16 * 1024 * 1024
    finally:
        slow.close()
    # It catches up with `watch` after reconnecting: everything is still there.
    again = await WsClient.open(exec_stack.gateway.ws_url, tokens.viewer)
    await again.send({"type": "watch", "job": job, "after": 100})
    replayed, _done = await collect_job(again, job, 30)
    assert [r["seq"] for r in replayed] == list(range(101, 121))
    await again.close()
