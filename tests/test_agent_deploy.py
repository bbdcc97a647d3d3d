"""An agent on a plain host: installs with only its own light dependencies, and reaches a shared
Redis that wants a password over TLS (`rediss://`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import redis

from fleetdeck_common.hoststore import HostStore
from testbed.procs import ROOT, Service, free_port, start_agent, wait_until
from tests.support.history import recent
from tests.support.stores import in_hosts


def test_agent_publishes_through_tls_redis_with_a_password(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = Service(
        "redis-tls",
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(cert),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        {},
        tmp_path,
    )
    url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    client = redis.Redis.from_url(url, decode_responses=True)
    agent = None
    try:
        wait_until(client.ping, 10, what="TLS redis")
        agent = start_agent("tls-host", url, tmp_path, 0.5)
        wait_until(
            lambda: len(recent(url, "tls-host", 10)) >= 2,
            15,
            what="samples over TLS",
        )
        beat = in_hosts(url, HostStore.heartbeats)["tls-host"]
        assert beat.host == "tls-host" and beat.cpus >= 1
        wrong = start_agent("no-password", url.replace("s3cret", "wrong"), tmp_path, 0.5)
        wait_until(lambda: "cannot publish samples" in wrong.log(), 15, what="a clear complaint")
        assert wrong.alive() and wrong.stop() == 0
    finally:
        if agent is not None:
            assert agent.stop() == 0
        client.close()
        server.stop()


@pytest.mark.timeout(600)  # a real pip install: under a loaded CI it has taken over two minutes
def test_agent_installs_alone_with_only_light_dependencies(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Copies, so the build does not leave build/ folders in the source tree.
    for project in ("common", "cpu-agent"):
        shutil.copytree(
            ROOT / project, tmp_path / project, ignore=shutil.ignore_patterns("*.egg-info", "build")
        )
    install = subprocess.run(
        [
            *pip,
            "-c",
            str(ROOT / "constraints.txt"),
            f"{tmp_path / 'common'}[redis]",
            str(tmp_path / "cpu-agent"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    listed = subprocess.run(
        [str(target / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)} - {"pip", "setuptools"}
    assert {"fleetdeck-agent", "fleetdeck-common", "psutil", "redis"} <= names
    heavy = {"starlette", "uvicorn", "asyncssh", "cryptography", "prometheus-client", "websockets"}
    assert not names & heavy, names & heavy
    helped = subprocess.run(
        [str(target / "bin" / "fleetdeck-agent"), "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "REDIS_URL" in helped.stdout
    assert sys.version_info >= (3, 11)
