"""Environment variables to typed settings, in one place; every setting is also a CLI flag."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .targets import TargetPolicy, parse_allow_entry

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class BrokerSettings(BaseSettings):
    """What every service shares: the broker URL and logging."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias="REDIS_URL",
        description="broker URL: redis://[:password@]host:port/db, rediss:// (TLS), memory:// (one process)",
    )
    log_level: str = Field("INFO", validation_alias="FLEETDECK_LOG_LEVEL", description="log level")
    log_json: bool = Field(
        False, validation_alias="FLEETDECK_LOG_JSON", description="log one JSON object per line"
    )

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ValueError("must start with redis://, rediss://, unix:// or memory://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level


class AgentSettings(BrokerSettings):
    agent_name: str = Field(
        default_factory=socket.gethostname,
        validation_alias="FLEETDECK_AGENT_NAME",
        description="host name shown on the dashboard (default: this machine's host name)",
        min_length=1,
        max_length=253,
    )
    interval: float = Field(
        1.0,
        validation_alias="FLEETDECK_INTERVAL",
        gt=0.05,
        le=3600,
        description="seconds between samples",
    )
    health_file: Path | None = Field(
        Path("/tmp/fleetdeck-agent.health"),  # noqa: S108 - a liveness marker, nothing secret
        validation_alias="FLEETDECK_HEALTH_FILE",
        description="file touched after every published sample; `--check` reads it",
    )
    history_size: int = Field(
        900,
        validation_alias="FLEETDECK_HISTORY_SIZE",
        ge=10,
        le=100_000,
        description="samples of history kept per host in Redis (900 = 15 min at 1 s)",
    )


class TargetSettings(BrokerSettings):
    allowed_targets: CommaList = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        validation_alias="FLEETDECK_ALLOWED_TARGETS",
        description="comma list of CIDRs / host names (or *.domain) that exec may target",
    )
    max_hosts: int = Field(
        1024,
        validation_alias="FLEETDECK_MAX_HOSTS",
        ge=1,
        le=65536,
        description="most hosts one job may expand to",
    )

    @field_validator("allowed_targets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("allowed_targets")
    @classmethod
    def _valid_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_allow_entry(entry)
        return value

    def target_policy(self) -> TargetPolicy:
        return TargetPolicy.from_entries(self.allowed_targets, self.max_hosts)


class GatewaySettings(TargetSettings):
    host: str = Field("127.0.0.1", validation_alias="FLEETDECK_HOST", description="address to bind")
    port: int = Field(8000, validation_alias="FLEETDECK_PORT", ge=0, le=65535, description="port to bind")
    tokens_file: Path | None = Field(
        None,
        validation_alias="FLEETDECK_TOKENS_FILE",
        description="token file (NAME ROLE SHA256HEX per line); without it a one-off operator token is made",
    )
    allowed_origins: CommaList = Field(
        default_factory=list,
        validation_alias="FLEETDECK_ALLOWED_ORIGINS",
        description="comma list of origins allowed on /ws (default: the gateway's own origin)",
    )
    ws_per_message_deflate: bool = Field(
        False,
        validation_alias="FLEETDECK_WS_DEFLATE",
        description="negotiate permessage-deflate on WebSockets (costs CPU per frame)",
    )
    ws_ping_interval: float = Field(
        20.0,
        validation_alias="FLEETDECK_WS_PING_INTERVAL",
        gt=0,
        description="seconds between WebSocket pings; a peer that misses one for as long is dropped",
    )
    forget_after: float = Field(
        86400.0,
        validation_alias="FLEETDECK_FORGET_AFTER",
        ge=60,
        description="seconds an offline host stays listed before it is forgotten (with its history)",
    )
    public_url: str | None = Field(
        None,
        validation_alias="FLEETDECK_PUBLIC_URL",
        description="URL people reach the gateway at (used in the printed login URL)",
    )
    web_dir: Path | None = Field(
        None,
        validation_alias="FLEETDECK_WEB_DIR",
        description="folder with the dashboard's files (default: web/ of a source checkout)",
    )
    secure_cookies: bool = Field(
        False,
        validation_alias="FLEETDECK_SECURE_COOKIES",
        description="mark the session cookie Secure (set when TLS ends at a proxy in front)",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _split_commas(value)


def _default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(TargetSettings):
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
