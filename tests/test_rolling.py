"""Rolling jobs: `batch` and `max_failures` refused with a sentence when wrong; waves one after the
other and the failure threshold (hosts past it never run) on real OpenSSH sshd hosts on loopback;
a job taken over mid-wave runs no host twice and none past the threshold."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fleetdeck_common.broker import create_broker
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.jobs.signing import as_queued
from fleetdeck_common.messages import Job, Outcome
from fleetdeck_common.messages.inbound import ProtocolError, parse_client_frame
from fleetdeck_common.messages.rolling import failure_limit, waves
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_worker.jobrun import JobRun, LeaseLost
from fleetdeck_worker.sshlogin import SshOptions
from testbed.opensshd import OpenSshd, client_key, start_sshd
from testbed.procs import free_port
from tests.support.waiting import eventually

POLICY = TargetPolicy.from_entries(["127.0.0.0/8"])
ADDRESSES = [f"127.0.7.{i}" for i in range(1, 7)]


def exec_frame(**fields: object) -> str:
    return json.dumps({"type": "exec", "targets": "127.0.0.2", "command": "true", **fields})


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"batch": 0}, "batch 0 is too small: it must be at least one host"),
        ({"batch": "0%"}, "batch 0% is too small"),
        ({"batch": "150%"}, "batch 150% is more than 100%"),
        ({"batch": "lots"}, "batch 'lots' is not a number of hosts or a percentage like 25%"),
        ({"batch": "-2"}, "batch '-2' is not a number"),
        ({"batch": 2.5}, "batch must be a number of hosts or a percentage"),
        ({"max_failures": "101%"}, "max_failures 101% is more than 100%"),
        ({"max_failures": "x%"}, "max_failures 'x%' is not a number"),
        ({"max_failures": True}, "max_failures must be a number of hosts"),
    ],
)
def test_bad_batch_and_max_failures_are_refused_with_a_sentence(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(exec_frame(**fields))
    assert refused.value.code == "bad_request"
    assert says in refused.value.message
    assert refused.value.message.startswith("invalid exec: ")


def test_batch_and_max_failures_take_a_number_or_a_percentage() -> None:
    frame = parse_client_frame(exec_frame(batch=" 25 % ", max_failures=0))
    assert (frame.batch, frame.max_failures) == ("25%", "0")  # type: ignore[union-attr]
    hosts = [f"h{i}" for i in range(10)]
    assert waves(hosts, None) == [hosts]
    assert waves(hosts, "4") == [hosts[0:4], hosts[4:8], hosts[8:10]]
    assert waves(hosts, "25%") == [hosts[0:3], hosts[3:6], hosts[6:9], hosts[9:10]]  # rounded up
    assert waves(hosts[:3], "1%") == [["h0"], ["h1"], ["h2"]]  # at least one host a wave
    assert waves(hosts, "100%") == [hosts]
    assert failure_limit(None, 10) is None
    assert failure_limit("19%", 10) == 1  # rounded down
    assert failure_limit("0", 10) == 0


def test_the_wave_in_progress_is_not_signed() -> None:
    """The worker rewrites `wave`; a job taken over mid-wave verifies against what was signed."""
    queued = Job(job="j", targets="t", command="c", hosts=4, by="a", ts=1.0, state="queued", batch="2")
    running = queued.model_copy(update={"state": "running", "wave": 2, "waves": 2})
    assert as_queued(running) == queued


# --- on real OpenSSH sshd ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshOptions, Path]]:
    """Six stock sshd hosts on one port, and a folder their commands can write to."""
    workdir = tmp_path_factory.mktemp("rolling")
    key, public = client_key(workdir / "client")
    port = free_port(ADDRESSES[0])
    servers: list[OpenSshd] = []
    try:
        for address in ADDRESSES:
            servers.append(
                start_sshd(
                    workdir / address, address, public, workdir / "commands.jsonl", port,
                    record=False, home=workdir / "home",
                )
            )  # fmt: skip
        known = workdir / "known_hosts"
        known.write_text("".join(s.known_hosts_line for s in servers))
        options = SshOptions(user="root", port=port, key=key, known_hosts=known, connect_timeout=10)
        yield options, workdir
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[JobStore]:
    async with create_broker(redis_url) as broker:
        yield JobStore(broker)


def rolling_job(command: str, batch: str | None, max_failures: str | None = None) -> Job:
    return Job(
        job=f"roll{time.time_ns()}",
        targets="127.0.7.1-6",
        command=command,
        hosts=len(ADDRESSES),
        by="t",
        ts=time.time(),
        state="queued",
        batch=batch,
        max_failures=max_failures,
    )


def ran_log(log: Path) -> list[tuple[str, int, int]]:
    """(host, started ns, ended ns) of every command that ran, as the hosts wrote them."""
    if not log.exists():
        return []
    return [(h, int(s), int(e)) for h, s, e in (line.split() for line in log.read_text().splitlines())]


def logging_command(log: Path, fail_on: tuple[str, ...] = ()) -> str:
    """Writes the host (the address sshd answered on), start and end to `log`; fails on `fail_on`."""
    failing = " ".join(fail_on) or "none"
    return (
        'h=$(echo "$SSH_CONNECTION" | cut -d" " -f3); s=$(date +%s%N); '
        f'sleep 0.2; echo "$h $s $(date +%s%N)" >> {log}; '
        f'for f in {failing}; do [ "$h" = "$f" ] && exit 7; done; exit 0'
    )


@pytest.mark.ssh
async def test_waves_run_one_after_the_other(sshd_hosts: tuple[SshOptions, Path], store: JobStore) -> None:
    options, workdir = sshd_hosts
    log = workdir / f"waves-{time.time_ns()}.log"
    job = rolling_job(logging_command(log), batch="2")
    await store.announce(job)
    seen: list[tuple[int | None, int | None]] = []
    run = JobRun(store, job, "w-roll", POLICY, options, 8)
    task = asyncio.create_task(run.run())
    while not task.done():  # the job frame says which wave runs
        record = await store.load(job.job)
        if record is not None and record.wave is not None and (record.wave, record.waves) not in seen:
            seen.append((record.wave, record.waves))
        await asyncio.sleep(0.02)
    await task
    stored = await store.read_results(job.job)
    assert stored.done is not None and stored.done.summary == {"ok": 6}
    assert stored.done.error is None
    ran = ran_log(log)
    assert sorted(h for h, _, _ in ran) == ADDRESSES  # each host once
    by_host = {h: (s, e) for h, s, e in ran}
    plan = [ADDRESSES[0:2], ADDRESSES[2:4], ADDRESSES[4:6]]
    for earlier, later in itertools.pairwise(plan):
        assert max(by_host[h][1] for h in earlier) < min(by_host[h][0] for h in later)
    final = await store.load(job.job)
    assert final is not None and (final.state, final.wave, final.waves) == ("done", 3, 3)
    assert seen[-1] == (3, 3) and seen == sorted(seen)


@pytest.mark.ssh
async def test_no_host_starts_once_more_than_max_failures_did_not_succeed(
    sshd_hosts: tuple[SshOptions, Path], store: JobStore
) -> None:
    options, workdir = sshd_hosts
    log = workdir / f"threshold-{time.time_ns()}.log"
    # Wave 2 (127.0.7.3-4) fails on both hosts: two failures, more than the one allowed.
    job = rolling_job(logging_command(log, ("127.0.7.3", "127.0.7.4")), batch="2", max_failures="1")
    await store.announce(job)
    await JobRun(store, job, "w-roll", POLICY, options, 8).run()
    stored = await store.read_results(job.job)
    status = {r.host: r.status for r in stored.results}
    assert status == {
        "127.0.7.1": "ok",
        "127.0.7.2": "ok",
        "127.0.7.3": "failed",
        "127.0.7.4": "failed",
        "127.0.7.5": "cancelled",
        "127.0.7.6": "cancelled",
    }
    assert sorted(h for h, _, _ in ran_log(log)) == ADDRESSES[:4]  # the hosts past it never ran
    why = "the hosts left were not started: 2 hosts had not succeeded, more than max_failures 1 allows"
    assert all(r.error is not None and why in r.error for r in stored.results if r.status == "cancelled")
    assert stored.done is not None and stored.done.error is not None and why in stored.done.error
    assert stored.done.retry_targets == "127.0.7.3-6"


# --- a takeover mid-wave (an in-process runner, as in test_jobrun.py) --------------------------


class HeldHosts:
    """Stands in for SSH: counts runs, holds one host mid-command, fails none."""

    def __init__(self, held: str) -> None:
        self.ran: list[str] = []
        self.held = held
        self.release = asyncio.Event()

    async def __call__(
        self, host: str, command: str, timeout: float, ssh: SshOptions, cancel: asyncio.Event
    ) -> Outcome:
        self.ran.append(host)
        if host == self.held:
            await self.release.wait()
        return Outcome(status="ok", exit_code=0, stdout="", stderr="", duration_ms=1, truncated=False)


async def test_a_job_taken_over_mid_wave_runs_no_host_twice_nor_past_the_threshold(store: JobStore) -> None:
    job = rolling_job("x", batch="2", max_failures="0")
    await store.announce(job)
    hosts = HeldHosts("127.0.7.3")  # wave 2's first host: its worker stalls there
    stale = JobRun(store, job, "w-stale", POLICY, SshOptions(user="nobody"), 8, hosts, lease_ttl=30)
    stale_task = asyncio.create_task(stale.run())

    async def wave_two_half_done() -> bool:
        return len((await store.read_results(job.job)).results) >= 3

    await eventually(wave_two_half_done, 10, "wave 1 and 127.0.7.4 reported, 127.0.7.3 held")
    record = await store.load(job.job)
    assert record is not None and (record.wave, record.waves) == (2, 3)
    await store.release_lease(job.job, "w-stale")  # it stalls past its lease; another takes over
    fresh = JobRun(store, job, "w-fresh", POLICY, SshOptions(user="nobody"), 8, hosts, lease_ttl=30)
    await fresh.run()
    hosts.release.set()
    with pytest.raises(LeaseLost):  # the stale worker may write nothing
        await asyncio.wait_for(stale_task, 5)
    stored = await store.read_results(job.job)
    status = {r.host: r.status for r in stored.results}
    assert status["127.0.7.3"] == "lost"  # one failure: more than max_failures 0
    assert [status[h] for h in ADDRESSES[4:]] == ["cancelled", "cancelled"]
    assert sorted(hosts.ran) == ADDRESSES[:4]  # each once; wave 3 never started
    assert [r.seq for r in stored.results] == [1, 2, 3, 4, 5, 6]
