"""Start fleetdeck services and servers as real processes, and wait for them without sleeping blindly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1", also: Iterable[str] = ()) -> int:
    """A TCP port free on `host`, and on every address in `also` (servers sharing one port)."""
    for _attempt in range(50):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        try:
            for address in also:
                with socket.socket() as sock:
                    sock.bind((address, port))
        except OSError:
            continue
        return port
    raise OSError(f"no port free on {host} and {len(list(also))} other addresses")


def wait_until(
    check: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(interval)  # a poll's pace; it returns as soon as the check holds
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}: {last_error}")


class Service:
    """A child process with its output in a log file, stopped with SIGTERM (or killed) at the end."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class RedisServer:
    """A real redis-server on a loopback port; can be killed and started again on the same port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistent: bool = False,
        aclfile: Path | None = None,
        admin_url: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.persistent = persistent  # append-only file as in compose: a restart keeps the data
        self.aclfile = aclfile  # users as `redis-server --aclfile` loads them
        self.admin_url = admin_url  # with an ACL file: a URL of a user that may PING
        self.service: Service | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.starts += 1
        self.service = Service(
            f"redis-{self.port}-{self.starts}",
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.workdir),
                *(["--aclfile", str(self.aclfile)] if self.aclfile else []),
            ],
            {},
            self.workdir,
        )
        wait_until(lambda: self.ping(self.admin_url or self.url), 10, what="redis-server to answer")

    def kill(self) -> None:
        if self.service:
            self.service.kill()

    @staticmethod
    def ping(url: str) -> bool:
        client = redis.Redis.from_url(url)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def stop(self) -> None:
        if self.service:
            self.service.stop()


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {"REDIS_URL": redis_url, "FLEETDECK_LOG_LEVEL": "INFO"}
    env.update(extra)
    return env


def start_agent(name: str, redis_url: str, log_dir: Path, interval: float = 0.5, **extra: str) -> Service:
    env = service_env(redis_url, FLEETDECK_AGENT_NAME=name, FLEETDECK_INTERVAL=str(interval), **extra)
    return Service(f"agent-{name}", [str(BIN / "fleetdeck-agent")], env, log_dir)


class Gateway:
    def __init__(self, service: Service, port: int) -> None:
        self.service = service
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        self.service.stop()


def start_gateway(
    redis_url: str,
    log_dir: Path,
    tokens_file: Path | None,
    name: str = "gateway",
    ready: bool = True,
    port: int | None = None,
    within: float = 60.0,  # a bound, not a wait: under a loaded CI a start has taken 30 s
    **extra: str,
) -> Gateway:
    port = port or free_port()
    env = service_env(redis_url, **extra)
    if tokens_file is not None:
        env["FLEETDECK_TOKENS_FILE"] = str(tokens_file)
    service = Service(name, [str(BIN / "fleetdeck-gateway"), "--port", str(port)], env, log_dir)
    gateway = Gateway(service, port)
    path = "/readyz" if ready else "/healthz"
    try:
        wait_until(
            lambda: httpx.get(gateway.url + path, timeout=1).status_code == 200,
            within,
            what=f"{name} on {port}",
        )
    except TimeoutError:
        service.stop()  # nobody else holds it to stop it
        raise
    return gateway


def start_worker(redis_url: str, log_dir: Path, name: str, **extra: str) -> Service:
    env = service_env(redis_url, FLEETDECK_WORKER_NAME=name, **extra)
    return Service(f"worker-{name}", [str(BIN / "fleetdeck-worker")], env, log_dir)


class SshFleet(NamedTuple):
    """testbed/sshfleet.py's asyncssh hosts, and what a client needs to reach them."""

    service: Service
    port: int
    key: Path  # the client's private key; its public half is authorized on every host
    known_hosts: Path


def start_ssh_fleet(workdir: Path, log_dir: Path, count: int, first: str, *more: str) -> SshFleet:
    """`count` loopback SSH hosts from `first` on (testbed/sshfleet.py; `more`: its other flags),
    a new client key, once they listen."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path, public = workdir / "id_ed25519", workdir / "id_ed25519.pub"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    key.write_public_key(str(public))
    argv = [sys.executable, "-m", "testbed.sshfleet", str(workdir), "--first", first, "--count", str(count)]
    service = Service(
        "sshfleet", [*argv, "--client-key", str(public), *more], {"PYTHONPATH": str(ROOT)}, log_dir
    )
    ready = workdir / "ready.json"
    try:
        wait_until(ready.exists, 60, what="the SSH fleet")
    except BaseException:
        service.stop()
        raise
    return SshFleet(service, json.loads(ready.read_text())["port"], key_path, workdir / "known_hosts")
