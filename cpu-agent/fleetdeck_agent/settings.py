"""The agent's settings: which host it is and how often it samples."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field

from fleetdeck_common.settings import BrokerSettings


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
