"""The CLI as a Unix citizen, as real processes against a real gateway and worker: `| head -1`
returns at once while hosts are silent (the job goes on), Ctrl-C cancels the job, shows its last
results and exits 130 with nothing left on the OpenSSH host, a second Ctrl-C exits at once;
`jobs`, `watch`, `cancel`, `hosts`; `--batch`/`--max-failures` roll a job out."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from testbed.procs import BIN, wait_until
from tests.support.stacks import OPENSSH_HOST, ExecStack, Stack, Tokens

pytestmark = pytest.mark.ssh

FLEETDECK = str(BIN / "fleetdeck")


def env(tokens: Tokens, url: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "FLEETDECK_TOKEN": tokens.operator, "FLEETDECK_URL": url}


def fleetdeck(*args: str, environ: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEETDECK, *args], capture_output=True, text=True, timeout=timeout, env=environ)


def remote_processes(tag: str) -> list[str]:
    """Processes on this machine (where the OpenSSH host runs commands) whose command line has `tag`."""
    found = subprocess.run(["pgrep", "-af", tag], capture_output=True, text=True)
    return [
        line for line in found.stdout.splitlines() if "pgrep" not in line and "/fleetdeck exec" not in line
    ]


def job_of(stderr: str) -> str:
    found = re.search(r"^job ([0-9a-f]+): ", stderr, re.MULTILINE)
    assert found, stderr
    return found.group(1)


def job_record(stack: ExecStack, tokens: Tokens, job: str) -> dict[str, object]:
    answer = httpx.get(
        f"{stack.gateway.url}/api/jobs/{job}", headers={"Authorization": f"Bearer {tokens.operator}"}
    )
    record: dict[str, object] = answer.json()
    return record


def test_exec_piped_into_head_ends_at_once_and_the_job_goes_on(
    exec_stack: ExecStack, tokens: Tokens, tmp_path: Path
) -> None:
    tag = f"pipe-{uuid.uuid4().hex[:10]}"
    errors = tmp_path / "stderr"
    # 127.0.0.2 answers at once; 127.0.0.3 stays silent for two minutes.
    command = f"case $FLEET_HOST in 127.0.0.2) echo {tag};; *) sleep 120;; esac"
    shell = (
        f"{FLEETDECK} exec 127.0.0.2,127.0.0.3 -- '{command}' 2>{errors} | head -1; "
        'echo "exit ${PIPESTATUS[0]}" >&2'
    )
    run = subprocess.run(
        ["bash", "-c", shell],
        capture_output=True,
        text=True,
        timeout=40,
        env=env(tokens, exec_stack.gateway.url),
    )
    assert run.stdout.startswith("127.0.0.2") and tag in run.stdout and run.stdout.count("\n") == 1
    assert run.stderr.strip() == "exit 141"  # 128 + SIGPIPE, as a shell reports a writer whose reader left
    said = errors.read_text()
    assert "Traceback" not in said and "connection lost" not in said, said
    job = job_of(said)
    assert job_record(exec_stack, tokens, job)["state"] == "running"  # nobody cancelled it
    cancelled = fleetdeck("cancel", job, environ=env(tokens, exec_stack.gateway.url))
    assert cancelled.returncode == 0 and f"job {job}: cancel sent" in cancelled.stdout, cancelled.stderr
    watched = fleetdeck("watch", job, environ=env(tokens, exec_stack.gateway.url))
    assert watched.returncode == 1, watched.stderr  # a host was cancelled: not every host succeeded
    assert re.search(r"^127\.0\.0\.2 +ok ", watched.stdout, re.MULTILINE)
    assert re.search(r"^127\.0\.0\.3 +cancelled ", watched.stdout, re.MULTILINE)
    listed = fleetdeck("jobs", "--json", environ=env(tokens, exec_stack.gateway.url))
    mine = next(j for j in json.loads(listed.stdout) if j["job"] == job)
    assert mine["state"] == "cancelled" and mine["cancelled_by"] == "alice"
    table = fleetdeck("jobs", environ=env(tokens, exec_stack.gateway.url)).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "BY", "QUEUED"]
    assert any(line.startswith(job) and "cancelled" in line and "alice" in line for line in table)


def test_ctrl_c_cancels_the_job_shows_the_last_results_and_exits_130(
    exec_stack: ExecStack, tokens: Tokens
) -> None:
    tag = f"sigint-{uuid.uuid4().hex[:10]}"
    process = subprocess.Popen(
        [FLEETDECK, "exec", OPENSSH_HOST, "--", f"echo {tag}; sleep 300; : {tag}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(tokens, exec_stack.gateway.url),
    )
    try:
        wait_until(lambda: remote_processes(f": {tag}"), 30, what="the command running on the OpenSSH host")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "cancelling job" in err
    assert re.search(rf"^{re.escape(OPENSSH_HOST)} +cancelled ", out, re.MULTILINE), out
    assert "hosts in" in out and "cancelled 1" in out  # the summary came back
    wait_until(lambda: not remote_processes(f": {tag}"), 10, what="no process of the command left")


def test_a_second_ctrl_c_exits_at_once(exec_stack: ExecStack, tokens: Tokens) -> None:
    tag = f"twice-{uuid.uuid4().hex[:10]}"
    process = subprocess.Popen(
        [FLEETDECK, "exec", "127.0.0.2", "--", f"sleep 300; : {tag}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(tokens, exec_stack.gateway.url),
    )
    try:
        wait_until(lambda: remote_processes(f": {tag}"), 30, what="the command running")
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    fleetdeck("cancel", job_of(err), environ=env(tokens, exec_stack.gateway.url))  # if the first did not


def test_batch_and_max_failures_roll_the_job_out(exec_stack: ExecStack, tokens: Tokens) -> None:
    command = '[ "$FLEET_HOST" = 127.0.0.3 ] && exit 4; echo fine'
    run = fleetdeck(
        "exec", "127.0.0.2-7", "--batch", "2", "--max-failures", "0", "--", command,
        environ=env(tokens, exec_stack.gateway.url),
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert re.search(r"^127\.0\.0\.3 +failed ", run.stdout, re.MULTILINE)
    assert len(re.findall(r"^127\.0\.0\.[4-7] +cancelled ", run.stdout, re.MULTILINE)) == 4
    assert "more than max_failures 0 allows" in run.stdout
    refused = fleetdeck(
        "exec", "127.0.0.2", "--batch", "0%", "--", "true", environ=env(tokens, exec_stack.gateway.url)
    )
    assert refused.returncode == 2 and "batch 0% is too small" in refused.stderr, refused.stderr


def test_hosts_lists_name_online_address_labels_cpu_and_memory(stack: Stack, tokens: Tokens) -> None:
    environ = env(tokens, stack.gateway.url)

    def listed() -> list[dict[str, object]]:
        run = fleetdeck("hosts", "--json", environ=environ)
        assert run.returncode == 0, run.stderr
        return [json.loads(line) for line in run.stdout.splitlines()]

    wait_until(lambda: {"agent-a", "agent-b"} <= {h["host"] for h in listed() if h["cpu"] is not None}, 30)
    agent = next(h for h in listed() if h["host"] == "agent-a")
    assert agent["online"] is True and isinstance(agent["mem"], float)
    table = fleetdeck("hosts", environ=environ).stdout.splitlines()
    assert table[0].split() == ["HOST", "ONLINE", "ADDRESS", "CPU", "%", "MEM", "%", "LABELS"]
    assert any(line.startswith("agent-a") and " yes " in line for line in table)
    wrong = fleetdeck("hosts", environ={**environ, "FLEETDECK_TOKEN": "fdk_wrong"})
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr
    away = fleetdeck("jobs", "--url", "http://127.0.0.1:9", environ=environ)
    assert away.returncode == 3 and "cannot reach" in away.stderr and "Traceback" not in away.stderr
