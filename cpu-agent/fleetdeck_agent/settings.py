"""The agent's settings: which host it is and how often it samples."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from fleetdeck_common.settings import HistorySettings
from fleetdeck_common.targets import parse_labels
from fleetdeck_common.targets.labels import check_host_labels


class AgentSettings(HistorySettings):
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
    labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        validation_alias="FLEETDECK_AGENT_LABELS",
        description="labels of this host, key=value pairs separated by commas (role=web,dc=eu); "
        "exec targets can select hosts by them (@role=web)",
    )
    address: str | None = Field(
        None,
        validation_alias="FLEETDECK_AGENT_ADDRESS",
        description="how the exec worker reaches this host over SSH (default: the agent name)",
        min_length=1,
        max_length=253,
    )
    proc_path: Path | None = Field(
        None,
        validation_alias="FLEETDECK_PROC_PATH",
        description="where the machine's /proc is mounted, read-only, for an agent in a container "
        "(/host/proc); CPU, memory, load, network and uptime are read there (default: /proc)",
    )
    rootfs_path: Path | None = Field(
        None,
        validation_alias="FLEETDECK_ROOTFS_PATH",
        description="where the machine's / is mounted, read-only, for an agent in a container "
        "(/host/root); disk use is measured there, for the file systems listed in <proc>/1/mounts "
        "(default: the file systems the agent sees itself)",
    )
    simulate: int = Field(
        0,
        validation_alias="FLEETDECK_SIMULATE",
        ge=0,
        le=20_000,
        description="publish this many simulated hosts instead of this machine (demos, tests, benchmarks)",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: Any) -> Any:
        return parse_labels(value) if isinstance(value, str) else value

    @field_validator("labels")
    @classmethod
    def _reserved_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_host_labels(value)

    def ssh_address(self) -> str:
        return self.address or self.agent_name
