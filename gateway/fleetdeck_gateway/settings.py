"""The gateway's settings: where it listens, who may log in, and how it treats sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from fleetdeck_common.settings import CommaList, HistorySettings, TargetSettings, TermSettings, split_commas


def check_http_url(value: str | None) -> str | None:
    """An http(s) URL with a host, or None (unset); anything else is refused with a sentence that
    names the scheme only, since such URLs often carry a secret."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        shown = f"a {parts.scheme}:// URL" if parts.scheme else "a URL without a scheme"
        raise ValueError(f"must be an http:// or https:// URL (https://hooks.example.org/x), not {shown}")
    if not parts.hostname:
        raise ValueError("must name a host, like https://hooks.example.org/fleet")
    return value


class GatewaySettings(TargetSettings, HistorySettings, TermSettings):
    host: str = Field("127.0.0.1", validation_alias="FLEETDECK_HOST", description="address to bind")
    port: int = Field(8000, validation_alias="FLEETDECK_PORT", ge=0, le=65535, description="port to bind")
    tokens_file: Path | None = Field(
        None,
        validation_alias="FLEETDECK_TOKENS_FILE",
        description="token file (NAME ROLE SHA256HEX per line); without it a one-off operator token is made",
    )
    session_ttl: float = Field(
        12 * 3600.0,
        validation_alias="FLEETDECK_SESSION_TTL",
        ge=60,
        le=30 * 86400,
        description="seconds a login session lasts (never longer than its token, when that expires)",
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
    ws_send_buffer: int = Field(
        256 * 1024,
        validation_alias="FLEETDECK_WS_SEND_BUFFER",
        ge=0,
        le=64 * 1024 * 1024,
        description="bytes of kernel send buffer per WebSocket (0: the kernel sizes it); a cap keeps a "
        "slow reader's stale frames in the gateway, where newer ones replace them",
    )
    fleet_tick: float = Field(
        1.0,
        validation_alias="FLEETDECK_FLEET_TICK",
        ge=0.1,
        le=60,
        description="seconds between `fleet` frames (a client gets at most one per tick)",
    )
    max_upload: int = Field(
        64 * 1024 * 1024,
        validation_alias="FLEETDECK_MAX_UPLOAD",
        ge=1,
        le=1024 * 1024 * 1024,
        description="bytes one uploaded file (POST /api/files, for copy jobs) may have",
    )
    max_uploads_total: int = Field(
        512 * 1024 * 1024,
        validation_alias="FLEETDECK_MAX_UPLOADS_TOTAL",
        ge=1,
        description="bytes all uploaded files kept in the broker (a day each) may have together",
    )
    forget_after: float = Field(
        86400.0,
        validation_alias="FLEETDECK_FORGET_AFTER",
        ge=60,
        description="seconds an offline host stays listed before it is forgotten (its history stays "
        "as long as FLEETDECK_HISTORY_TIERS keeps it)",
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
    audit_keep: int = Field(
        100_000,
        validation_alias="FLEETDECK_AUDIT_KEEP",
        ge=1000,
        le=100_000_000,
        description="audit entries kept in Redis (the oldest are trimmed beyond it; no expiry)",
    )
    login_failures: int = Field(
        10,
        validation_alias="FLEETDECK_LOGIN_FAILURES",
        ge=1,
        le=10_000,
        description="failed logins one address may make per minute; past them it gets 429 for a while",
    )
    alert_rules: Path | None = Field(
        None,
        validation_alias="FLEETDECK_ALERT_RULES",
        description="alert rules file (YAML, see docs/alerts.md); reloaded on SIGHUP and when it changes",
    )
    alert_webhook: str | None = Field(
        None,
        validation_alias="FLEETDECK_ALERT_WEBHOOK",
        description="URL each alert transition is POSTed to, in Alertmanager's webhook format",
    )
    alertmanager_url: str | None = Field(
        None,
        validation_alias="FLEETDECK_ALERTMANAGER_URL",
        description="an Alertmanager's base URL: firing alerts are pushed to its /api/v2/alerts",
    )
    alert_send_timeout: float = Field(
        10.0,
        validation_alias="FLEETDECK_ALERT_SEND_TIMEOUT",
        gt=0,
        le=300,
        description="seconds one POST to the alert webhook or Alertmanager may take before it is retried",
    )
    term_max_per_user: int = Field(
        8,
        validation_alias="FLEETDECK_TERM_MAX_PER_USER",
        ge=1,
        le=1000,
        description="terminals one user may have open at once, on all gateways together",
    )
    term_idle_timeout: float = Field(
        900.0,
        validation_alias="FLEETDECK_TERM_IDLE_TIMEOUT",
        ge=1,
        le=7 * 86400,
        description="seconds a terminal may go without input or output before it is closed",
    )

    @field_validator("alert_webhook", "alertmanager_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return split_commas(value)

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def login_url(self, token: str) -> str:
        # In the fragment, so the token never reaches a server log or a Referer header.
        return f"{self.base_url()}/login#token={token}"
