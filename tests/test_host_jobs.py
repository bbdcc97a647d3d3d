"""GET /api/jobs?host=NAME, the jobs on a host's chart: which jobs ran there and its own status in
each, as pure rules, from a job's stored `done` on both brokers, and from a real gateway, worker
and SSH fleet."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import Done, Job, OutputGroup
from fleetdeck_common.targets import TargetPolicy, expand_targets
from fleetdeck_gateway.services.hostjobs import host_param, known_as, ran_on, status_on, window_param
from testbed.procs import start_agent, wait_until
from tests.support.later import Backend
from tests.support.stacks import ExecStack, Tokens

POLICY = TargetPolicy()


def expand(expression: str) -> list[str]:
    return expand_targets(expression, POLICY)


def job(targets: str, resolved: str | None = None) -> Job:
    return Job(
        job="j1",
        targets=targets,
        command="x",
        hosts=3,
        by="t",
        ts=1.0,
        state="done",
        resolved_targets=resolved,
    )


def done(*groups: tuple[str, str]) -> Done:
    return Done(
        job="j1",
        summary={},
        duration_ms=1,
        groups=[OutputGroup(hosts=h, count=1, status=s, exit_code=0, output="") for h, s in groups],
    )


def named(host: str) -> frozenset[str]:
    return known_as(host, None)


def test_a_job_ran_on_the_hosts_its_targets_chose_when_it_was_queued() -> None:
    assert ran_on(job("127.0.0.[2-4]"), named("127.0.0.3"), expand)
    assert not ran_on(job("127.0.0.[2-4]"), named("127.0.0.5"), expand)
    # Label selectors count as they were resolved at queue time.
    assert ran_on(job("@role=web", "127.0.0.9"), named("127.0.0.9"), expand)
    # Targets the allowlist no longer takes: left out, not an error.
    assert not ran_on(job("10.0.0.1"), named("10.0.0.1"), expand)


def test_a_host_is_matched_by_its_name_and_by_its_address() -> None:
    web = known_as("web01", "127.0.0.3")
    assert web == {"web01", "127.0.0.3"}
    assert known_as("web01", "") == {"web01"}  # a heartbeat without an address
    assert ran_on(job("127.0.0.[2-4]"), web, expand)  # the job reached it by address
    assert not ran_on(job("127.0.0.[2-4]"), named("web01"), expand)  # the name alone misses it
    assert not ran_on(job("127.0.0.5"), web, expand)
    finished = done(("127.0.0.2", "ok"), ("127.0.0.3", "failed"))
    assert status_on(finished, web, expand) == "failed"
    assert status_on(finished, named("web01"), expand) is None


def test_the_hosts_own_status_comes_from_the_output_groups() -> None:
    finished = done(("127.0.0.[2-3]", "ok"), ("127.0.0.4", "failed"))
    assert status_on(finished, named("127.0.0.3"), expand) == "ok"
    assert status_on(finished, named("127.0.0.4"), expand) == "failed"
    assert status_on(finished, named("127.0.0.5"), expand) is None
    assert status_on(None, named("127.0.0.3"), expand) is None  # still running


def test_the_host_parameter_is_checked_with_a_sentence() -> None:
    assert host_param(None) is None
    assert host_param("web01") == "web01"
    for bad in ("", "x" * 254, "a\nb"):
        with pytest.raises(ValueError, match="host must be"):
            host_param(bad)


def test_the_range_parameters_are_checked_with_a_sentence() -> None:
    assert window_param(None, None, 1000.0) is None
    assert window_param("100", None, 1000.0) == (100.0, 1000.0)
    assert window_param("15m", "200", 1000.0) == (100.0, 200.0)
    for since, until, says in [
        ("soon", None, "since must be"),
        ("100", "later", "until must be"),
        (None, "100", "until needs since"),
        ("200", "100", "until must not be earlier"),
    ]:
        with pytest.raises(ValueError, match=says):
            window_param(since, until, 1000.0)


async def test_the_jobs_of_a_range_are_found_beyond_the_last_100(backend: Backend) -> None:
    store = JobStore(backend.broker)
    start = 1_800_000_000.0
    for n in range(150):  # one a minute, the newest last
        queued = Job(
            job=f"r{n:03d}",
            targets="127.0.0.2",
            command="x",
            hosts=1,
            by="t",
            ts=start + 60 * n,
            state="queued",
        )
        await store.submit(queued)
    assert "r020" not in {j.job for j in await store.recent(100)}
    found = await store.between(start + 60 * 10, start + 60 * 30)
    assert [j.job for j in found] == [f"r{n:03d}" for n in range(30, 9, -1)]
    assert [j.job for j in await store.between(start + 60 * 149, start + 10**6)] == ["r149"]
    assert await store.between(start - 10**6, start - 1) == []


async def test_a_jobs_done_is_read_from_the_end_of_its_results(backend: Backend) -> None:
    store = JobStore(backend.broker)
    queued = Job(job="fin1", targets="127.0.0.2", command="x", hosts=1, by="t", ts=1.0, state="running")
    await store.announce(queued)
    assert await store.final("fin1") is None
    assert await store.hold_lease("fin1", "w-test", 60)
    await store.append(done(("127.0.0.2", "ok")).model_copy(update={"job": "fin1"}), "w-test", 1)
    final = await store.final("fin1")
    assert final is not None and final.groups[0].status == "ok"


def test_the_api_lists_a_hosts_jobs_with_its_own_status(exec_stack: ExecStack, tokens: Tokens) -> None:
    url = exec_stack.gateway.url

    def get(path: str) -> httpx.Response:
        return httpx.get(url + path, headers={"Authorization": f"Bearer {tokens.viewer}"}, timeout=10)

    def run(targets: str, command: str) -> str:
        answer = httpx.post(
            url + "/api/jobs",
            json={"targets": targets, "command": command},
            headers={"Authorization": f"Bearer {tokens.operator}"},
        )
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["job"]
        wait_until(lambda: get(f"/api/jobs/{job_id}").json()["state"] == "done", 30, what=job_id)
        return job_id

    ok = run("127.0.0.40-41", "true")
    failed = run("127.0.0.40", "exit 3")
    elsewhere = run("127.0.0.41", "true")
    listed = get("/api/jobs?host=127.0.0.40").json()["jobs"]
    assert [(j["job"], j["host_status"]) for j in listed][:2] == [(failed, "failed"), (ok, "ok")]
    assert elsewhere not in {j["job"] for j in listed}
    assert [j["job"] for j in get("/api/jobs").json()["jobs"]][:3] == [elsewhere, failed, ok]
    assert "host_status" not in get("/api/jobs").json()["jobs"][0]
    assert get("/api/jobs?host=127.0.0.250").json()["jobs"] == []
    bad = get("/api/jobs?host=" + "x" * 300)
    assert bad.status_code == 400 and "host must be" in bad.json()["message"]
    # A chart's range: the jobs queued in it (any of those still kept, not only the last 100).
    queued = {j["job"]: j["ts"] for j in listed}
    later = get(f"/api/jobs?host=127.0.0.40&since={queued[failed]}").json()["jobs"]
    assert [j["job"] for j in later] == [failed] and later[0]["host_status"] == "failed"
    around = f"since={queued[ok] - 0.001}&until={queued[ok] + 0.001}"
    assert [j["job"] for j in get(f"/api/jobs?host=127.0.0.40&{around}").json()["jobs"]] == [ok]
    for query, says in (("since=soon", "since must be"), ("until=1", "until needs since")):
        refused = get(f"/api/jobs?host=127.0.0.40&{query}")
        assert refused.status_code == 400 and says in refused.json()["message"], refused.text


def test_a_hosts_jobs_are_found_by_its_name_when_ssh_reaches_it_at_another_address(
    exec_stack: ExecStack, tokens: Tokens, tmp_path: Path
) -> None:
    url = exec_stack.gateway.url
    name = f"named-{uuid.uuid4().hex[:6]}"
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}

    def get(path: str) -> httpx.Response:
        return httpx.get(url + path, headers=viewer, timeout=10)

    def address() -> str | None:
        hosts = get("/api/hosts").json()["hosts"]
        return next((h["address"] for h in hosts if h["host"] == name and h["online"]), None)

    agent = start_agent(name, exec_stack.users.url("agent"), tmp_path, FLEETDECK_AGENT_ADDRESS="127.0.0.42")
    try:
        wait_until(lambda: address() == "127.0.0.42", 20, what="the gateway knows the agent's address")
        answer = httpx.post(
            url + "/api/jobs",
            json={"targets": "127.0.0.42", "command": "exit 4"},
            headers={"Authorization": f"Bearer {tokens.operator}"},
        )
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["job"]
        wait_until(lambda: get(f"/api/jobs/{job_id}").json()["state"] == "done", 30, what=job_id)
        by_name = get(f"/api/jobs?host={name}").json()["jobs"]
        assert [(j["job"], j["host_status"]) for j in by_name][:1] == [(job_id, "failed")]
        by_address = get("/api/jobs?host=127.0.0.42").json()["jobs"]
        assert by_address[0]["job"] == job_id  # the address alone still finds it
    finally:
        agent.stop()
