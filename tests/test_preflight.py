"""The worker checks its SSH setup at start and says what is wrong, naming the file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import asyncssh
import pytest

from fleetdeck_worker.preflight import check_ssh_setup
from fleetdeck_worker.settings import WorkerSettings
from testbed.procs import BIN


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
    return path


def settings(**values: object) -> WorkerSettings:
    return WorkerSettings(redis_url="memory://", **values)  # type: ignore[arg-type]


def test_a_good_setup_has_nothing_to_say(key: Path, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    findings = check_ssh_setup(settings(ssh_key=key, known_hosts=known), home=tmp_path)
    assert (findings.errors, findings.warnings) == ([], [])


def test_missing_and_unusable_files_are_errors_that_name_them(key: Path, tmp_path: Path) -> None:
    missing = check_ssh_setup(settings(ssh_key=tmp_path / "nope", known_hosts=tmp_path / "kh"), home=tmp_path)
    assert any(f"FLEETDECK_SSH_KEY: {tmp_path / 'nope'} does not exist" in e for e in missing.errors)
    assert any(f"FLEETDECK_KNOWN_HOSTS: {tmp_path / 'kh'} does not exist" in e for e in missing.errors)
    assert any("ssh-keyscan -p 22 HOST" in e for e in missing.errors)
    garbage = tmp_path / "not-a-key"
    garbage.write_text("hello\n")
    unusable = check_ssh_setup(settings(ssh_key=garbage, ssh_host_key_check=False), home=tmp_path)
    assert len(unusable.errors) == 1 and "is not a usable private key" in unusable.errors[0]


def test_missing_defaults_are_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    findings = check_ssh_setup(settings(ssh_port=2222), home=tmp_path)
    assert findings.errors == []
    assert any("no SSH key" in w for w in findings.warnings)
    assert any("known_hosts does not exist" in w and "ssh-keyscan -p 2222" in w for w in findings.warnings)


def test_a_worker_with_a_missing_key_refuses_to_start_naming_the_file(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(BIN / "fleetdeck-worker")],
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "FLEETDECK_SSH_KEY": "/nonexistent/key"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "FLEETDECK_SSH_KEY: /nonexistent/key does not exist" in run.stderr


def test_in_compose_a_missing_file_also_names_the_folder_to_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = settings(ssh_key=tmp_path / "id_ed25519", known_hosts=tmp_path / "known_hosts")
    monkeypatch.delenv("FLEETDECK_COMPOSE_SSH_DIR", raising=False)
    assert not any("docker compose" in e for e in check_ssh_setup(missing, home=tmp_path).errors)
    monkeypatch.setenv("FLEETDECK_COMPOSE_SSH_DIR", "./ssh")  # set by docker-compose.yml
    errors = check_ssh_setup(missing, home=tmp_path).errors
    assert len(errors) == 3 and "FLEETDECK_SSH_DIR names in .env (now: ./ssh)" in errors[-1]
    assert f"readable by uid {os.getuid()}" in errors[-1]
    key = tmp_path / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    (tmp_path / "known_hosts").write_text("")
    assert check_ssh_setup(missing, home=tmp_path).errors == []  # nothing to say when all is there
