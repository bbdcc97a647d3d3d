"""The worker's settings: how it logs in to hosts, how much it runs at once, when it takes over."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

from pydantic import Field

from fleetdeck_common.settings import TargetSettings, TermSettings
from fleetdeck_common.terms.cast import DEFAULT_LIMIT

from .sshlogin import SshOptions
from .sshpool import SshPool


def _default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(TargetSettings, TermSettings):
    worker_name: str = Field(
        default_factory=_default_worker_name,
        validation_alias="FLEETDECK_WORKER_NAME",
        description="consumer name in the jobs group (default: host name and pid)",
    )
    ssh_user: str = Field(
        default_factory=getpass.getuser,
        validation_alias="FLEETDECK_SSH_USER",
        description="SSH login user",
    )
    ssh_key: Path | None = Field(
        None,
        validation_alias="FLEETDECK_SSH_KEY",
        description="private key file for SSH",
    )
    ssh_port: int = Field(22, validation_alias="FLEETDECK_SSH_PORT", ge=1, le=65535, description="SSH port")
    known_hosts: Path | None = Field(
        None,
        validation_alias="FLEETDECK_KNOWN_HOSTS",
        description="known_hosts file (default ~/.ssh/known_hosts); host keys are checked strictly",
    )
    ssh_host_key_check: bool = Field(
        True,
        validation_alias="FLEETDECK_SSH_HOST_KEY_CHECK",
        description="check host keys against known_hosts ('off' trusts any host key)",
    )
    exec_concurrency: int = Field(
        64,
        validation_alias="FLEETDECK_EXEC_CONCURRENCY",
        ge=1,
        le=4096,
        description="hosts run at once per job",
    )
    connect_timeout: float = Field(
        10.0,
        validation_alias="FLEETDECK_SSH_CONNECT_TIMEOUT",
        gt=0,
        description="seconds to connect and log in to one host",
    )
    output_limit: int = Field(
        65536,
        validation_alias="FLEETDECK_OUTPUT_LIMIT",
        ge=256,
        description="bytes of stdout and of stderr kept per host; the rest is cut and flagged",
    )
    claim_idle: float = Field(
        30.0,
        validation_alias="FLEETDECK_CLAIM_IDLE",
        ge=0.5,
        description="seconds a job may go without its worker's heartbeat before another worker takes it over",
    )
    health_file: Path | None = Field(
        Path("/tmp/fleetdeck-worker.health"),  # noqa: S108 - a liveness marker, nothing secret
        validation_alias="FLEETDECK_HEALTH_FILE",
        description="file touched while the broker answers; `--check` reads it",
    )
    shutdown_grace: float = Field(
        10.0,
        validation_alias="FLEETDECK_SHUTDOWN_GRACE",
        ge=0,
        description="on SIGTERM, seconds running hosts get to finish before they are cancelled",
    )
    max_jobs: int = Field(
        8,
        validation_alias="FLEETDECK_WORKER_JOBS",
        ge=1,
        le=1024,
        description="jobs one worker runs at once; more wait in the queue for this or another worker",
    )
    ssh_idle: float = Field(
        60.0,
        validation_alias="FLEETDECK_SSH_IDLE",
        ge=0,
        le=86400,
        description="seconds an unused SSH connection to a host is kept for the next command "
        "(0: a new connection for every command)",
    )
    ssh_max_connections: int = Field(
        512,
        validation_alias="FLEETDECK_SSH_MAX_CONNECTIONS",
        ge=1,
        le=65536,
        description="SSH connections kept at most; beyond it the least recently used idle ones are closed",
    )
    term_record_limit: int = Field(
        DEFAULT_LIMIT,
        validation_alias="FLEETDECK_TERM_RECORD_LIMIT",
        ge=1024,
        le=1024 * 1024 * 1024,
        description="characters of a terminal session's recording kept; past them it is cut (and says so)",
    )
    max_terms: int = Field(
        256,
        validation_alias="FLEETDECK_WORKER_TERMS",
        ge=1,
        le=65536,
        description="terminals one worker holds at once; more are refused with a reason",
    )

    def ssh_options(self) -> SshOptions:
        """How to reach hosts, with this worker's pool of kept connections (None when ssh_idle is 0)."""
        return SshOptions(
            user=self.ssh_user,
            port=self.ssh_port,
            key=self.ssh_key,
            known_hosts=self.known_hosts,
            check_host_keys=self.ssh_host_key_check,
            connect_timeout=self.connect_timeout,
            output_limit=self.output_limit,
            pool=SshPool(self.ssh_idle, self.ssh_max_connections) if self.ssh_idle > 0 else None,
        )
