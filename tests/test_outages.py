"""While the broker is away: every page and API call answers (a clear 503, never a 500 or a hang),
and a command-line client waiting on a job gives up at its deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from testbed.procs import BIN, RedisServer, start_gateway, wait_until
from tests.support.stacks import Tokens


def _timed_get(url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def test_a_frozen_or_dead_broker_gets_clear_answers_not_errors_or_hangs(
    tmp_path: Path, tokens: Tokens
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    gateway = start_gateway(
        redis.url, tmp_path, tokens.file, name="gateway-outage", FLEETDECK_BROKER_TIMEOUT="1"
    )
    try:
        login = httpx.post(gateway.url + "/api/login", json={"token": tokens.viewer})
        cookies = login.cookies
        assert httpx.get(gateway.url + "/", cookies=cookies).status_code == 200
        assert redis.service is not None
        os.kill(redis.service.pid, signal.SIGSTOP)  # frozen: connections stay open, nothing answers
        try:
            page, took = _timed_get(gateway.url + "/", cookies=cookies)
            assert page.status_code == 503 and "cannot reach its broker" in page.text
            assert took < 5, f"the page took {took:.1f}s while the broker was frozen"
            jobs, took = _timed_get(
                gateway.url + "/api/jobs", headers={"Authorization": f"Bearer {tokens.viewer}"}
            )
            assert jobs.status_code == 503 and jobs.json()["error"] == "unavailable" and took < 5
            assert httpx.get(gateway.url + "/readyz", timeout=10).status_code == 503
        finally:
            os.kill(redis.service.pid, signal.SIGCONT)
        wait_until(
            lambda: httpx.get(gateway.url + "/", cookies=cookies).status_code == 200, 10, what="page back"
        )
        redis.kill()  # dead: connections refused
        page, took = _timed_get(gateway.url + "/", cookies=cookies)
        assert page.status_code == 503 and took < 5
        assert httpx.get(gateway.url + "/login").status_code == 200  # needs no broker
        assert "Redis unreachable" in gateway.service.log()
    finally:
        gateway.stop()
        redis.stop()


def test_exec_gives_up_at_its_deadline_and_names_the_job(tmp_path: Path, tokens: Tokens) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    gateway = start_gateway(redis.url, tmp_path, tokens.file, name="gateway-deadline")  # and no worker
    try:
        started = time.monotonic()
        run = subprocess.run(
            [str(BIN / "fleetdeck"), "exec", "--deadline", "2", "127.0.0.2", "--", "true"],
            env={**os.environ, "FLEETDECK_URL": gateway.url, "FLEETDECK_TOKEN": tokens.operator},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 4, run.stderr
        assert "gave up waiting after 2s" in run.stderr and "/api/jobs/" in run.stderr
        assert "no exec worker is running; the job waits in the queue for 60s" in run.stderr
        assert time.monotonic() - started < 15
    finally:
        gateway.stop()
        redis.stop()
