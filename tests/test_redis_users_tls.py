"""`fleetdeck redis-users DIR --tls NAMES`: the CA and certificate it writes let a TLS-only redis-server
serve every service's user with verification on (the deploy/k8s Redis's own probe included), a client
holding another CA is refused saying so, and the files are kept on a re-run and replaced on --rotate."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from cryptography import x509

from fleetdeck_common.acl import SERVICES
from fleetdeck_common.broker import create_broker
from testbed.procs import ROOT, start_agent, start_gateway, wait_until
from testbed.tls import Certificates, TlsRedisServer
from tests.support.redis_users import RedisUsers, admin_url, service_refusals, with_admin
from tests.support.stacks import Tokens
from tests.test_cli import fleetdeck

NOT_TRUSTED = "TLS certificate is not trusted"
UNNAMED = "127.0.1.251"  # Redis listens here too; the certificate names only 127.0.0.1 and localhost
TLS_FILES = ("ca.crt", "ca.key", "redis.crt", "redis.key")


def redis_users(folder: Path, url: str, *more: str) -> subprocess.CompletedProcess[str]:
    return fleetdeck("redis-users", str(folder), "--redis", url, *more)


def certificates(folder: Path) -> Certificates:
    tls = folder / "tls"
    return Certificates(tls / "ca.crt", tls / "ca.key", tls / "redis.crt", tls / "redis.key")


def read_all(folder: Path) -> dict[str, bytes]:
    return {name: (folder / "tls" / name).read_bytes() for name in TLS_FILES}


def alt_names(folder: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate((folder / "tls" / "redis.crt").read_bytes())
    alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*alt.get_values_for_type(x509.DNSName), *map(str, alt.get_values_for_type(x509.IPAddress))}


@dataclass
class Made:
    server: TlsRedisServer
    users: RedisUsers
    folder: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """A TLS-only redis-server on loopback, with the users and the certificate `redis-users --tls` wrote."""
    workdir = tmp_path_factory.mktemp("redis-users-tls")
    folder = workdir / "users"
    server = TlsRedisServer(workdir, certificates(folder), also=(UNNAMED,))
    run = redis_users(folder, f"rediss://127.0.0.1:{server.port}/0", "--tls", "localhost")
    assert run.returncode == 0, run.stderr
    password = secrets.token_hex(16)
    # The test's admin reaches it as the services do: rediss:// with the CA the run wrote.
    ca = folder / "tls" / "ca.crt"
    users = RedisUsers(folder, admin_url(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={ca}", password))
    server.aclfile = with_admin(folder / "users.acl", password)
    server.admin_url = users.admin_url
    server.start()
    yield Made(server, users, folder)
    server.stop()


def test_the_files_are_written_once_kept_and_replaced_on_rotate(tmp_path: Path) -> None:
    url = "rediss://redis.example.net:6380/0"
    assert redis_users(tmp_path, url, "--tls", "10.0.0.5,redis.internal").returncode == 0
    first = read_all(tmp_path)
    assert alt_names(tmp_path) == {"redis.example.net", "10.0.0.5", "redis.internal"}
    for name in ("ca.key", "redis.key"):
        assert (tmp_path / "tls" / name).stat().st_mode & 0o077 == 0, name
    verify = ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"]
    checked = subprocess.run([*verify, str(tmp_path / "tls/ca.crt"), str(tmp_path / "tls/redis.crt")])
    assert checked.returncode == 0
    # Each URL trusts that CA, where this machine has it.
    assert (tmp_path / "agent.url").read_text().strip().endswith(f"?ssl_ca_certs={tmp_path / 'tls/ca.crt'}")

    assert redis_users(tmp_path, url, "--tls", "10.0.0.5,redis.internal").returncode == 0
    assert read_all(tmp_path) == first  # run again: everything kept
    assert redis_users(tmp_path, url, "--tls", "10.0.0.6").returncode == 0
    renamed = read_all(tmp_path)
    assert alt_names(tmp_path) == {"redis.example.net", "10.0.0.6"}
    assert renamed["ca.crt"] == first["ca.crt"] and renamed["redis.crt"] != first["redis.crt"]
    assert redis_users(tmp_path, url, "--tls", "10.0.0.6", "--rotate").returncode == 0
    rotated = read_all(tmp_path)
    assert all(rotated[name] != renamed[name] for name in TLS_FILES)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--redis", "redis://redis:6379/0", "--tls", "redis"), "--redis must be a rediss:// URL"),
        (("--redis", "rediss://redis:6379/0", "--tls", "ok,not a name"), "'not a name' is neither an IP"),
    ],
)
def test_tls_with_bad_input_says_what_is_wrong_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    run = fleetdeck("redis-users", str(tmp_path / "out"), *args)
    assert run.returncode == 2 and said in run.stderr and "--tls" in run.stderr, run.stderr
    assert not (tmp_path / "out" / "tls").exists()


@pytest.mark.redis
async def test_every_user_connects_over_tls_with_the_written_ca(made: Made) -> None:
    for service in SERVICES:
        url = made.users.url(service)
        assert url.startswith(f"rediss://fleetdeck-{service}:") and "ssl_ca_certs=" in url, service
        async with create_broker(url) as broker:
            assert await broker.ping(), service
    # Verification is on: the same server at an address its certificate does not name is refused.
    unnamed = made.users.url("agent").replace("127.0.0.1", UNNAMED)
    async with create_broker(unnamed) as broker:
        assert not await broker.ping()
        assert "does not name the host in REDIS_URL" in broker.down_reason


@pytest.mark.redis
def test_services_work_on_it_and_another_ca_is_refused_saying_so(
    made: Made, tmp_path: Path, tokens: Tokens
) -> None:
    with httpx.Client(timeout=5) as http:
        agent = start_agent("tls-made-host", made.users.url("agent"), tmp_path, 0.3)
        try:
            gateway = start_gateway(
                made.users.url("gateway"),
                tmp_path,
                tokens.file,
                name="gateway-tls-made",
                within=60,
                FLEETDECK_JOB_KEY_FILE=made.users.job_key,
            )
            try:
                as_viewer = {"Authorization": f"Bearer {tokens.viewer}"}
                wait_until(
                    lambda: (
                        "tls-made-host"
                        in {
                            h["host"]
                            for h in http.get(gateway.url + "/api/hosts", headers=as_viewer).json()["hosts"]
                        }
                    ),
                    30,
                    what="the agent's sample to reach the gateway over TLS",
                )
                assert http.get(gateway.url + "/readyz").json() == {"status": "ready"}
            finally:
                gateway.stop()
        finally:
            agent.stop()
        # A CA of another `redis-users --tls` run: the gateway is not ready and says why.
        other = tmp_path / "other"
        assert redis_users(other, f"rediss://127.0.0.1:{made.server.port}/0", "--tls").returncode == 0
        url = made.users.url("gateway").split("?", 1)[0] + f"?ssl_ca_certs={other / 'tls/ca.crt'}"
        refused = start_gateway(url, tmp_path, tokens.file, name="gateway-other-ca", ready=False)
        try:
            answer = http.get(refused.url + "/readyz")
        finally:
            refused.stop()
    assert answer.status_code == 503 and NOT_TRUSTED in answer.json()["reason"], answer.json()
    assert NOT_TRUSTED in refused.service.log()
    with contextlib.closing(redis.Redis.from_url(made.users.admin_url)) as admin:
        assert service_refusals(admin) == {}  # the services' users were refused nothing


@pytest.mark.redis
def test_the_k8s_redis_probe_passes_with_the_written_ca_only(made: Made, tmp_path: Path) -> None:
    """deploy/k8s/redis.yaml's readiness probe, run against this server with its files: it answers
    with the written CA (whose certificate names the Service, not 127.0.0.1) and fails with another."""
    documents = yaml.safe_load_all((ROOT / "deploy/k8s/redis.yaml").read_text())
    (statefulset,) = [d for d in documents if d and d["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    script = container["readinessProbe"]["exec"]["command"][-1]
    assert "redis-cli --tls --cacert /etc/fleetdeck/ca.crt " in script

    def probe(folder: Path) -> int:
        here = script.replace("/etc/fleetdeck/", f"{folder / 'tls'}/").replace(
            "redis-cli ", f"redis-cli -p {made.server.port} ", 1
        )
        return subprocess.run(["sh", "-c", here], capture_output=True, timeout=30).returncode

    assert probe(made.folder) == 0
    other = tmp_path / "other"
    assert redis_users(other, "rediss://fleetdeck-redis:6379/0", "--tls").returncode == 0
    assert probe(other) != 0
