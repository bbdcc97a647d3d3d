"""`fleetdeck up` gives its local agent and worker the gateway's value of every setting they share."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetdeck.up import LOCAL_ADDRESS, MEMORY_URL, local_services
from fleetdeck_gateway.settings import GatewaySettings
from testbed.opensshd import client_key, start_sshd
from testbed.procs import BIN, Service, free_port, wait_until

TIERS = "2s:1h,1m:7d"


def test_the_agent_and_worker_carry_the_gateways_shared_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment says one thing, the flag (the gateway's value) another: the flag wins for all.
    monkeypatch.setenv("FLEETDECK_HISTORY_TIERS", "5s:1h")
    monkeypatch.setenv("FLEETDECK_JOB_QUEUE_TIMEOUT", "30")
    monkeypatch.setenv("FLEETDECK_INTERVAL", "0.25")  # the agent's own setting still comes from here
    key = tmp_path / "job.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    gateway = GatewaySettings(
        redis_url=MEMORY_URL,
        history_tiers=TIERS,
        job_key_file=key,
        job_queue_timeout=90,
        allowed_targets=["127.0.0.0/24"],
        max_hosts=7,
        log_level="DEBUG",
        broker_timeout=9,
    )
    agent, worker = local_services(gateway)
    assert agent.redis_url == worker.redis_url == MEMORY_URL
    assert agent.history_tiers == TIERS and agent.tiers() == gateway.tiers()
    assert agent.interval == 0.25
    assert (worker.job_key_file, worker.job_queue_timeout) == (key, 90)
    assert (worker.allowed_targets, worker.max_hosts) == (["127.0.0.0/24"], 7)
    for service in (agent, worker):
        assert (service.log_level, service.broker_timeout) == ("DEBUG", 9)
    assert agent.ssh_address() == LOCAL_ADDRESS  # this machine, over loopback
    monkeypatch.setenv("FLEETDECK_AGENT_ADDRESS", "127.0.0.9")
    assert local_services(gateway)[0].ssh_address() == "127.0.0.9"  # unless told otherwise


def test_up_with_other_tiers_serves_the_history_its_agent_writes(tmp_path: Path) -> None:
    port = free_port()
    env = {"FLEETDECK_INTERVAL": "0.5", "FLEETDECK_AGENT_NAME": "up-tiers"}
    argv = [str(BIN / "fleetdeck"), "up", "--port", str(port), "--history-tiers", TIERS]
    up = Service("fleetdeck-up-tiers", argv, env, tmp_path)
    try:
        wait_until(lambda: "Log in at:" in up.log(), 20, what="the login URL")
        match = re.search(r"login#token=(\S+)", up.log())
        assert match is not None, up.log()
        auth = {"Authorization": f"Bearer {match.group(1)}"}
        url = f"http://127.0.0.1:{port}/api/hosts/up-tiers/history?since=5m"

        def history() -> dict[str, Any]:
            response = httpx.get(url, headers=auth, timeout=10)
            body: dict[str, Any] = response.json() if response.status_code == 200 else {"samples": []}
            return body

        wait_until(lambda: len(history()["samples"]) >= 2, 30, what="history at 2 s steps")
        body = history()
        assert body["step"] == 2
        assert all(sample["ts"] % 2 == 0 for sample in body["samples"])
    finally:
        assert up.stop() == 0, up.log()


@pytest.mark.ssh
def test_the_host_up_shows_runs_a_command_targeted_by_its_name(tmp_path: Path) -> None:
    """The one host on `fleetdeck up`'s dashboard is this machine: `exec vm` runs over 127.0.0.1
    (inside the default allowlist), not at the name `vm`, which no allowlist holds."""
    key, public = client_key(tmp_path / "client")
    sshd = start_sshd(tmp_path / "sshd", LOCAL_ADDRESS, public, tmp_path / "commands.jsonl")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line)
    port = free_port()
    env = {
        "FLEETDECK_AGENT_NAME": "vm",
        "FLEETDECK_INTERVAL": "0.5",
        "FLEETDECK_SSH_KEY": str(key),
        "FLEETDECK_KNOWN_HOSTS": str(known_hosts),
        "FLEETDECK_SSH_PORT": str(sshd.port),
        "FLEETDECK_SSH_USER": "root",
        "FLEETDECK_SSH_CONNECT_TIMEOUT": "10",
    }
    up = Service("fleetdeck-up-vm", [str(BIN / "fleetdeck"), "up", "--port", str(port)], env, tmp_path)
    try:
        wait_until(lambda: "Log in at:" in up.log(), 30, what="the login URL")
        match = re.search(r"login#token=(\S+)", up.log())
        assert match is not None, up.log()
        token, url = match.group(1), f"http://127.0.0.1:{port}"

        def address_of_vm() -> str | None:
            try:
                response = httpx.get(
                    f"{url}/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=5
                )
            except httpx.HTTPError:
                return None
            hosts = response.json()["hosts"] if response.status_code == 200 else []
            return next((h["address"] for h in hosts if h["host"] == "vm"), None)

        # A first sample may show the host before its heartbeat (and address) is read.
        wait_until(lambda: address_of_vm() == LOCAL_ADDRESS, 30, what="the host vm at 127.0.0.1")
        argv = [str(BIN / "fleetdeck"), "exec", "--url", url, "--token", token, "--json", "vm", "--"]
        ran = subprocess.run(
            [*argv, "echo up-$((6*7))"], capture_output=True, text=True, timeout=90, check=False
        )
        assert ran.returncode == 0, (ran.stdout, ran.stderr, up.log())
        frames = [json.loads(line) for line in ran.stdout.splitlines()]
        results = [f for f in frames if f["type"] == "result"]
        assert [(r["host"], r["status"], r["stdout"]) for r in results] == [(LOCAL_ADDRESS, "ok", "up-42\n")]
        recorded = [json.loads(line) for line in (tmp_path / "commands.jsonl").read_text().splitlines()]
        assert len(recorded) == 1 and recorded[0]["command"].endswith("; echo up-$((6*7))")
    finally:
        assert up.stop() == 0, up.log()
        sshd.stop()
