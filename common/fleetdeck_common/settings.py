"""Settings every service shares (broker, logging, exec targets); each service adds its own.

Every setting is an environment variable and, through `cli`, a command-line flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .broker import check_url
from .history.tiers import DEFAULT_TIERS, Tier, parse_tiers
from .jobs.previouskey import PreviousKey, load_previous_key
from .jobs.signing import JobKey, load_job_key
from .targets import TargetPolicy, parse_allow_entry

CommaList = Annotated[list[str], NoDecode]


def read_url_file(path: Path) -> str:
    """The broker URL in `path`, on one line as `fleetdeck redis-users` writes it; ValueError if unusable."""
    try:
        url = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not url:
        raise ValueError(f"{path} is empty; it should hold the broker URL")
    if "\n" in url:
        raise ValueError(f"{path} holds more than one line; it should hold the broker URL only")
    try:
        return check_url(url)
    except ValueError as exc:
        raise ValueError(f"the URL in {path} {exc}") from None


def split_commas(value: Any) -> Any:
    """`a, b,c` from the environment to a list; lists from flags pass through."""
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
    redis_url_file: Path | None = Field(
        None,
        validation_alias="REDIS_URL_FILE",
        description="file holding the broker URL (as `fleetdeck redis-users` writes DIR/SERVICE.url), read "
        "when REDIS_URL is not set, so no password sits in the environment",
    )
    redis_connections: int = Field(
        50,
        validation_alias="FLEETDECK_REDIS_CONNECTIONS",
        ge=2,
        le=10_000,
        description="most Redis connections this process opens; more work waits for a free one",
    )
    broker_timeout: float = Field(
        5.0,
        validation_alias="FLEETDECK_BROKER_TIMEOUT",
        gt=0,
        le=300,
        description="seconds any one broker call may take before it counts as the broker being away",
    )
    log_level: str = Field("INFO", validation_alias="FLEETDECK_LOG_LEVEL", description="log level")
    log_json: bool = Field(
        False, validation_alias="FLEETDECK_LOG_JSON", description="log one JSON object per line"
    )

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return check_url(value)

    @field_validator("redis_url_file")
    @classmethod
    def _readable_url_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_url_file(value)  # a service refuses to start with a URL file it could not use
        return value

    @model_validator(mode="after")
    def _url_from_file(self) -> Self:
        if self.redis_url_file is not None:
            if "redis_url" in self.model_fields_set:
                raise ValueError("REDIS_URL and REDIS_URL_FILE are both set; set only one of them")
            self.redis_url = read_url_file(self.redis_url_file)
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level


class TargetSettings(BrokerSettings):
    """What the gateway and the exec worker share: the exec targets and the job key."""

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

    job_key_file: Path | None = Field(
        None,
        validation_alias="FLEETDECK_JOB_KEY_FILE",
        description="file with the key jobs are signed with (32+ random bytes, mode 0600): the gateway "
        "signs every job it queues, the worker runs only jobs signed with it (unset: jobs are not signed)",
    )

    job_queue_timeout: float = Field(
        60.0,
        validation_alias="FLEETDECK_JOB_QUEUE_TIMEOUT",
        ge=1,
        le=7 * 86400,
        description="seconds a job may wait for an exec worker; then it expires and never runs "
        "(the worker: how long after a rotation it still accepts the previous job key)",
    )

    @field_validator("allowed_targets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_commas(value)

    @field_validator("allowed_targets")
    @classmethod
    def _valid_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_allow_entry(entry)
        return value

    @field_validator("job_key_file")
    @classmethod
    def _usable_key(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_job_key(value)  # a service refuses to start with a key it could not use
            load_previous_key(value, 0)  # and with a previous key beside it it could not use
        return value

    def job_key(self) -> JobKey | None:
        return load_job_key(self.job_key_file) if self.job_key_file is not None else None

    def previous_job_key(self) -> PreviousKey | None:
        """The key before the last rotation, accepted for one queue timeout after it."""
        if self.job_key_file is None:
            return None
        return load_previous_key(self.job_key_file, self.job_queue_timeout)

    def target_policy(self) -> TargetPolicy:
        return TargetPolicy.from_entries(self.allowed_targets, self.max_hosts)


class TermSettings(BrokerSettings):
    """What the gateway and the exec worker share about terminals: how long recordings stay."""

    term_keep: float = Field(
        7 * 86400.0,
        validation_alias="FLEETDECK_TERM_KEEP",
        ge=60,
        le=366 * 86400,
        description="seconds a terminal session's record and recording are kept (default 7 days)",
    )


class HistorySettings(BrokerSettings):
    """The history tiers: agents keep them, gateways read them; both must be given the same."""

    history_tiers: str = Field(
        DEFAULT_TIERS,
        validation_alias="FLEETDECK_HISTORY_TIERS",
        description="history kept per host: STEP:RETENTION tiers, finest first (every sample for 1 h, "
        "1-minute means for 7 d, 1-hour means for 90 d); agents and gateways must be given the same",
    )

    @field_validator("history_tiers")
    @classmethod
    def _check_tiers(cls, value: str) -> str:
        parse_tiers(value)
        return value

    def tiers(self) -> tuple[Tier, ...]:
        return parse_tiers(self.history_tiers)
