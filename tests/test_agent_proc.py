"""An agent in a container measures the machine: FLEETDECK_PROC_PATH points psutil (and the load
average) at the machine's /proc mounted elsewhere, and a path that is not a /proc stops it at start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetdeck_agent import sampler
from fleetdeck_agent.settings import AgentSettings
from testbed.procs import BIN
from tests.support.fakeproc import make_fake_proc


def test_a_sample_is_read_from_the_given_proc(tmp_path: Path) -> None:
    fake = make_fake_proc(tmp_path / "proc", cpus=3)
    try:
        sampler.use_proc(fake.path)
        sampler.prime()
        sample = sampler.take_sample("box", 1.0)
    finally:
        sampler.use_proc(None)  # psutil's setting is process-wide
    assert len(sample.percpu) == fake.cpus
    assert sample.load == fake.load  # from <path>/loadavg, not os.getloadavg()
    assert sample.mem == fake.mem_percent
    assert sampler.take_sample("box", 1.0).load != fake.load  # back on this process's own /proc


def test_the_setting_is_a_path_that_need_not_exist_where_it_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Manifests are checked on machines without the mount: only the agent's start looks at the path.
    monkeypatch.delenv("FLEETDECK_PROC_PATH", raising=False)
    assert AgentSettings(redis_url="memory://").proc_path is None
    monkeypatch.setenv("FLEETDECK_PROC_PATH", "/host/proc")
    assert AgentSettings(redis_url="memory://").proc_path == Path("/host/proc")


def test_a_path_without_a_readable_stat_is_named_with_the_variable(tmp_path: Path) -> None:
    problem = sampler.proc_problem(tmp_path / "missing")
    assert problem is not None
    assert problem.startswith("FLEETDECK_PROC_PATH:") and str(tmp_path / "missing" / "stat") in problem
    assert sampler.proc_problem(make_fake_proc(tmp_path / "proc").path) is None


def test_the_agent_refuses_to_start_on_a_path_that_is_not_a_proc(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(BIN / "fleetdeck-agent")],
        env={
            "PATH": "/usr/bin:/bin",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: the check comes first
            "FLEETDECK_PROC_PATH": str(tmp_path / "not-proc"),
            "FLEETDECK_HEALTH_FILE": str(tmp_path / "health"),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2, run.stderr
    assert "FLEETDECK_PROC_PATH" in run.stderr and "not-proc/stat" in run.stderr
    assert "-v /proc:" in run.stderr  # says how to mount it
