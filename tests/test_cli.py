"""The `fleetdeck` command: token add, exec through a gateway (exit codes), and `up` without Redis."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fleetdeck.exec_client import all_succeeded
from fleetdeck_common.messages import Done
from fleetdeck_gateway.auth.tokenstore import TokenStore
from testbed.browser import chromium
from testbed.procs import BIN, Service, free_port, start_gateway, wait_until
from tests.support.stacks import ExecStack, Tokens, private_stack

FLEETDECK = str(BIN / "fleetdeck")


def fleetdeck(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLEETDECK, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_token_add_prints_the_token_once_and_stores_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    made = fleetdeck("token", "add", "carol", "--role", "viewer", "--file", str(path))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("fdk_") and token not in path.read_text()
    identity = TokenStore(path).verify(token)
    assert identity is not None and (identity.name, identity.role) == ("carol", "viewer")
    again = fleetdeck("token", "add", "carol", "--role", "viewer", "--file", str(path))
    assert again.returncode == 2 and "already has" in again.stderr
    bad_role = fleetdeck("token", "add", "dave", "--role", "root", "--file", str(path))
    assert bad_role.returncode == 2


def test_exec_prints_a_line_per_host_and_exits_0_when_all_succeed(
    exec_stack: ExecStack, tokens: Tokens
) -> None:
    run = fleetdeck(
        "exec",
        "127.0.0.2-6",
        "--url",
        exec_stack.gateway.url,
        "--",
        "echo",
        "same",
        env={"FLEETDECK_TOKEN": tokens.operator},
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if re.match(r"127\.0\.0\.\d+ ", line)]
    assert len(lines) == 5 and all(" ok " in line and "same" in line for line in lines)
    assert "127.0.0.[2-6] (5) ok" in run.stdout


def test_exec_exits_1_when_a_host_fails_and_offers_a_retry(exec_stack: ExecStack, tokens: Tokens) -> None:
    run = fleetdeck(
        "exec",
        "127.0.0.2-4,127.1.2.3",
        "--url",
        exec_stack.gateway.url,
        "--token",
        tokens.operator,
        "--",
        '[ "$FLEET_HOST" = 127.0.0.3 ] && exit 7; printf "\\033[31mred\\n"',
    )
    assert run.returncode == 1, run.stderr
    assert re.search(r"127\.0\.0\.3\s+failed\s+exit 7", run.stdout)
    assert re.search(r"127\.1\.2\.3\s+unreachable", run.stdout)
    assert "\x1b[31m" not in run.stdout  # host output cannot drive the operator's terminal
    assert "re-run where it did not succeed: 127.0.0.3,127.1.2.3" in run.stdout


def test_exec_exits_2_when_refused(exec_stack: ExecStack, tokens: Tokens) -> None:
    outside = fleetdeck(
        "exec", "10.0.0.1-100", "--url", exec_stack.gateway.url, "--token", tokens.operator, "--", "id"
    )
    assert outside.returncode == 2 and "invalid_targets" in outside.stderr and "10.0.0.1" in outside.stderr
    viewer = fleetdeck(
        "exec", "127.0.0.2", "--url", exec_stack.gateway.url, "--token", tokens.viewer, "--", "id"
    )
    assert viewer.returncode == 2 and "forbidden" in viewer.stderr
    bad_token = fleetdeck("exec", "127.0.0.2", "--url", exec_stack.gateway.url, "--token", "nope", "--", "id")
    assert bad_token.returncode == 2 and "403" in bad_token.stderr
    nobody = fleetdeck(
        "exec", "127.0.0.2", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x", "--", "id"
    )
    assert nobody.returncode == 3


@pytest.mark.browser
async def test_up_runs_everything_in_one_process_without_redis(tmp_path: Path, exec_stack: ExecStack) -> None:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: `up` must not need it
    env = {"REDIS_URL": dead_redis, **exec_stack.fleet.worker_env(), "FLEETDECK_INTERVAL": "0.5"}
    up = Service("fleetdeck-up", [FLEETDECK, "up", "--port", str(port)], env, tmp_path)
    try:
        wait_until(lambda: "Log in at:" in up.log(), 20, what="the login URL")
        match = re.search(r"Log in at: (\S+)", up.log())
        assert match is not None
        login_url = match.group(1)
        assert login_url.startswith(f"http://127.0.0.1:{port}/login#token=fdk_")
        token = login_url.split("token=")[1]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(login_url)
            await page.wait_for_selector('#conn-state[data-state="online"]')
            # The local agent shows up in the host list; opened, its chart fills and moves.
            row = "#host-rows .host-row:not(.offline)"
            await page.wait_for_selector(row)
            await page.click(f"{row} .pin")
            card = ".chart-card"
            await page.wait_for_selector(card)
            more_than = "([sel, n]) => Number(document.querySelector(sel).dataset.points) > n"
            await page.wait_for_function(more_than, arg=[card, 2], timeout=10000)
        # Exec works in the one-process mode too, on the same SSH settings.
        run = subprocess.run(
            [
                FLEETDECK,
                "exec",
                "127.0.0.2-4",
                "--url",
                f"http://127.0.0.1:{port}",
                "--token",
                token,
                "--",
                "echo up-mode",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "127.0.0.[2-4] (3) ok" in run.stdout
    finally:
        assert up.stop() == 0, up.log()
    assert sys.executable  # the same interpreter ran everything


def test_exec_resumes_after_the_gateway_restarts_without_repeating_a_host(
    exec_stack: ExecStack, tokens: Tokens, tmp_path: Path
) -> None:
    key = exec_stack.users.job_key  # the worker runs signed jobs only
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        tmp_path,
        tokens.file,
        name="gateway-cli-restart",
        FLEETDECK_JOB_KEY_FILE=key,
    )
    port = gateway.port
    command = 'sleep "$(( (${FLEET_HOST##*.} % 4) * 2 ))"; echo done'
    stderr = tmp_path / "cli-restart.err"
    with stderr.open("w") as stderr_file:
        arguments = ["exec", "127.0.0.2-21", "--url", gateway.url, "--token", tokens.operator, "--", command]
        cli = subprocess.Popen(
            [FLEETDECK, *arguments],
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        )
    try:
        assert cli.stdout is not None
        first = [cli.stdout.readline() for _ in range(3)]  # three hosts done, the rest still running
        assert all(re.match(r"127\.0\.0\.\d+ ", line) for line in first), first
        gateway.stop()
        gateway = start_gateway(
            exec_stack.users.url("gateway"),
            tmp_path,
            tokens.file,
            name="gateway-cli-restart",
            port=port,
            FLEETDECK_JOB_KEY_FILE=key,
        )
        # Not communicate(): it reads the pipe underneath the lines readline() already buffered.
        cli.wait(timeout=60)
        rest = cli.stdout.read()
    finally:
        cli.kill()
        gateway.stop()
    errors = stderr.read_text()
    assert cli.returncode == 0, errors
    assert "resuming" in errors
    hosts = [line.split()[0] for line in first + rest.splitlines() if re.match(r"127\.0\.0\.\d+ ", line)]
    assert sorted(hosts) == sorted(f"127.0.0.{i}" for i in range(2, 22))


def test_exec_does_not_exit_0_when_the_worker_refuses_the_job(
    tmp_path: Path, tokens: Tokens, exec_stack: ExecStack
) -> None:
    # The worker's allowlist is narrower than the gateway's: it refuses, and says why.
    narrow = {"FLEETDECK_ALLOWED_TARGETS": "127.0.9.0/24"}
    with private_stack(tmp_path, tokens, exec_stack.fleet, "w-narrow", **narrow) as stack:
        url = stack.gateway.url
        run = fleetdeck("exec", "127.0.0.2-3", "--url", url, "--token", tokens.operator, "--", "true")
        assert run.returncode == 1, run.stdout + run.stderr
        assert "job error: refused by worker" in run.stdout and "outside the allowed targets" in run.stdout


def test_all_succeeded_needs_every_host_ok() -> None:
    def done(summary: dict[str, int], error: str | None = None) -> Done:
        return Done(job="j", summary=summary, duration_ms=1, error=error)

    assert all_succeeded(done({"ok": 3}), 3)
    assert not all_succeeded(done({"ok": 2}), 3)  # a host is missing
    assert not all_succeeded(done({"ok": 2, "failed": 1}), 3)
    assert not all_succeeded(done({}, "refused by worker"), 3)
    assert not all_succeeded(done({}), 1)


def test_exec_json_prints_one_frame_per_line(exec_stack: ExecStack, tokens: Tokens) -> None:
    run = fleetdeck(
        "exec",
        "127.0.0.2-4",
        "--json",
        "--url",
        exec_stack.gateway.url,
        "--token",
        tokens.operator,
        "--",
        "echo $FLEET_HOST",
    )
    assert run.returncode == 0, run.stderr
    frames = [json.loads(line) for line in run.stdout.splitlines()]
    assert [f["type"] for f in frames] == ["result", "result", "result", "done"]
    assert sorted(f["stdout"] for f in frames[:3]) == ["127.0.0.2\n", "127.0.0.3\n", "127.0.0.4\n"]
    assert frames[-1]["summary"] == {"ok": 3}
