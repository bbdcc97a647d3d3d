"""A CA, a Redis server certificate signed by it, and a redis-server that speaks only TLS on loopback.

The openssl commands are the ones docs/deploy.md "Redis across machines: TLS" tells operators to run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.procs import RedisServer, Service, free_port, wait_until


@dataclass(frozen=True)
class Certificates:
    """Where a CA's certificate and one server's certificate and key were written."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(workdir: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) in `workdir`, as the docs make one."""
    workdir.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "3650",
        "-subj", f"/CN=fleetdeck Redis CA ({name})",
        "-keyout", f"{name}.key", "-out", f"{name}.crt",
        cwd=workdir,
    )  # fmt: skip
    return workdir / f"{name}.crt", workdir / f"{name}.key"


def make_server_cert(workdir: Path, ca_cert: Path, ca_key: Path, alt_names: str) -> tuple[Path, Path]:
    """redis.crt and redis.key for the names in `alt_names` (`IP:10.0.0.5,DNS:redis.internal`)."""
    (workdir / "redis.ext").write_text(f"subjectAltName={alt_names}\n")
    openssl(
        "req", "-new", "-nodes", "-newkey", "rsa:2048",
        "-subj", "/CN=fleetdeck Redis", "-keyout", "redis.key", "-out", "redis.csr",
        cwd=workdir,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "redis.csr", "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "825", "-extfile", "redis.ext", "-out", "redis.crt",
        cwd=workdir,
    )  # fmt: skip
    (workdir / "redis.key").chmod(0o600)
    return workdir / "redis.crt", workdir / "redis.key"


def make_certificates(workdir: Path) -> Certificates:
    """A CA and a certificate for a Redis server reached as 127.0.0.1."""
    ca_cert, ca_key = make_ca(workdir)
    cert, key = make_server_cert(workdir, ca_cert, ca_key, "IP:127.0.0.1,DNS:localhost")
    return Certificates(ca_cert, ca_key, cert, key)


class TlsRedisServer:
    """A real redis-server with no plain-text port: TLS only, on a loopback port."""

    def __init__(
        self,
        workdir: Path,
        certificates: Certificates,
        also: tuple[str, ...] = (),
        aclfile: Path | None = None,
        admin_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.certificates = certificates
        self.also = also  # more loopback addresses to listen on (names the certificate may not list)
        self.aclfile = aclfile  # users as `redis-server --aclfile` loads them
        self.admin_url = admin_url  # with an ACL file: a rediss:// URL of a user that may PING
        self.port = free_port(also=also)
        self.service: Service | None = None

    @property
    def url(self) -> str:
        """The URL every service is given: rediss:// with the CA that signed the server's certificate."""
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.certificates.ca_cert}"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        certs = self.certificates
        argv = [
            binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1", *self.also,
            "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
            "--tls-ca-cert-file", str(certs.ca_cert), "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            *(["--aclfile", str(self.aclfile)] if self.aclfile else []),
        ]  # fmt: skip
        self.service = Service(f"redis-tls-{self.port}", argv, {}, self.workdir)
        wait_until(self.ping, 10, what="redis-server (TLS) to answer")

    def ping(self) -> bool:
        return RedisServer.ping(self.admin_url or self.url)

    def stop(self) -> None:
        if self.service:
            self.service.stop()
