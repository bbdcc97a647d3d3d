"""Settings: environment and flags, validated with messages that name the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetdeck_agent.settings import AgentSettings
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_worker.settings import WorkerSettings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "FLEETDECK_ALLOWED_TARGETS", "FLEETDECK_MAX_HOSTS", "FLEETDECK_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    worker = WorkerSettings()
    assert worker.redis_url == "redis://localhost:6379/0"
    assert worker.allowed_targets == ["127.0.0.0/8"]
    assert worker.max_hosts == 1024 and worker.exec_concurrency == 64 and worker.ssh_port == 22
    assert worker.ssh_host_key_check is True
    assert AgentSettings().interval == 1.0
    assert GatewaySettings().port == 8000


def test_environment_lists_and_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_ALLOWED_TARGETS", "10.0.0.0/24, web.example.com,*.lab")
    monkeypatch.setenv("FLEETDECK_SSH_HOST_KEY_CHECK", "off")
    worker = WorkerSettings()
    assert worker.allowed_targets == ["10.0.0.0/24", "web.example.com", "*.lab"]
    assert worker.ssh_host_key_check is False
    assert worker.target_policy().allows("db.lab")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FLEETDECK_INTERVAL", "0"), ("FLEETDECK_INTERVAL", "fast"), ("REDIS_URL", "http://x")],
)
def test_bad_values_exit_naming_flag_and_variable(variable: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetdeck_agent"],
        env={variable: value, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert variable in proc.stderr


def test_an_agent_refuses_the_reserved_label_key_alert_and_says_why() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetdeck_agent"],
        env={"FLEETDECK_AGENT_LABELS": "role=web,alert=cpu", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "FLEETDECK_AGENT_LABELS" in proc.stderr and "'alert' is reserved" in proc.stderr


def test_bad_allowlist_entry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_ALLOWED_TARGETS", "10.0.0.0/33")
    with pytest.raises(ValueError, match="not a CIDR"):
        WorkerSettings()


@pytest.mark.parametrize("command", ["fleetdeck-agent", "fleetdeck-gateway", "fleetdeck-worker"])
def test_every_command_documents_its_variables(command: str) -> None:
    out = subprocess.run(
        [f"{sys.prefix}/bin/{command}", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0
    assert "REDIS_URL" in out.stdout
    if command == "fleetdeck-agent":
        assert "FLEETDECK_INTERVAL" in out.stdout and "FLEETDECK_AGENT_NAME" in out.stdout
    if command == "fleetdeck-worker":
        assert "FLEETDECK_KNOWN_HOSTS" in out.stdout and "FLEETDECK_EXEC_CONCURRENCY" in out.stdout


@pytest.mark.parametrize("module", ["fleetdeck", "fleetdeck_gateway", "fleetdeck_agent", "fleetdeck_worker"])
def test_python_dash_m_works_for_every_command(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "usage:" in out.stdout


def test_gateway_exits_with_a_message_when_its_token_file_is_unusable(tmp_path: Path) -> None:
    out = subprocess.run(
        [f"{sys.prefix}/bin/fleetdeck-gateway", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"FLEETDECK_TOKENS_FILE": str(tmp_path / "nope"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 1
    assert "cannot use token file" in out.stderr and "nope" in out.stderr


def test_the_broker_url_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    url_file = tmp_path / "agent.url"
    url_file.write_text("redis://fleetdeck-agent:secret@redis:6379/0\n")
    monkeypatch.setenv("REDIS_URL_FILE", str(url_file))
    assert AgentSettings().redis_url == "redis://fleetdeck-agent:secret@redis:6379/0"
    assert WorkerSettings().redis_url == GatewaySettings().redis_url == AgentSettings().redis_url


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        ("", "is empty"),
        ("redis://a:6379/0\nredis://b:6379/0\n", "more than one line"),
        ("http://redis:6379/0\n", "must start with"),
    ],
)
def test_an_unusable_url_file_stops_the_service_naming_the_variable(
    tmp_path: Path, content: str | None, says: str
) -> None:
    url_file = tmp_path / "agent.url"
    if content is not None:
        url_file.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "fleetdeck_agent"],
        env={"REDIS_URL_FILE": str(url_file), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "REDIS_URL_FILE" in proc.stderr and says in proc.stderr and str(url_file) in proc.stderr


def test_the_url_and_the_url_file_together_are_refused(tmp_path: Path) -> None:
    url_file = tmp_path / "agent.url"
    url_file.write_text("redis://redis:6379/0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "fleetdeck_agent"],
        env={"REDIS_URL_FILE": str(url_file), "REDIS_URL": "redis://redis:6379/0", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "REDIS_URL and REDIS_URL_FILE are both set" in proc.stderr
