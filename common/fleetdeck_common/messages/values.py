"""Every protocol value, defined once: topics, roles, job states, host statuses, error codes,
limits and the id patterns. Pure; served to browsers by `protocol_description`."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError

Topic = Literal["cpu", "hosts", "chat", "jobs", "fleet", "alerts"]
Role = Literal["viewer", "operator"]
AlertState = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]
JobState = Literal["queued", "running", "done", "cancelled", "expired"]
HostStatus = Literal["ok", "failed", "timeout", "unreachable", "auth_failed", "error", "cancelled", "lost"]
ErrorCode = Literal[
    "bad_request",
    "unknown_type",
    "forbidden",
    "not_found",
    "invalid_targets",
    "rate_limited",
    "unavailable",
]

TOPICS: tuple[Topic, ...] = get_args(Topic)
FleetFormat = Literal["json", "compact"]  # how a client gets `fleet` frames (v1.2): JSON text or binary
FLEET_FORMATS: tuple[FleetFormat, ...] = get_args(FleetFormat)
# How a client gets `hosts` frames: the whole list on every change (v1), or the list once and then
# only what changed (v1.2), which at 10,000 hosts is a few hundred bytes instead of 700 KB.
HostsFormat = Literal["full", "changes"]
HOSTS_FORMATS: tuple[HostsFormat, ...] = get_args(HostsFormat)
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
FINISHED_STATES: frozenset[JobState] = frozenset({"done", "cancelled", "expired"})
HOST_STATUSES: tuple[HostStatus, ...] = get_args(HostStatus)
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)

PROTOCOL_VERSION = 1
MAX_COMMAND_CHARS = 8192
MAX_TARGETS_CHARS = 16384
MAX_TIMEOUT_SECONDS = 86400.0
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_CHAT_CHARS = 2000
MAX_REF_CHARS = 64
# Terminals (v1.2): a PTY's size, and what one `term_input` frame may carry.
MAX_TERM_COLS = 1000
MAX_TERM_ROWS = 500
MAX_TERM_INPUT_CHARS = 16384
TERM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

Ref = Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS)]
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=JOB_ID_PATTERN)]
_job_id_adapter: TypeAdapter[str] = TypeAdapter(JobId)
TermId = Annotated[str, Field(min_length=1, max_length=64, pattern=TERM_ID_PATTERN)]
TermCols = Annotated[int, Field(ge=1, le=MAX_TERM_COLS)]
TermRows = Annotated[int, Field(ge=1, le=MAX_TERM_ROWS)]


def is_job_id(text: str) -> bool:
    """Whether `text` could name a job (so it is safe to look up)."""
    try:
        _job_id_adapter.validate_python(text)
    except ValidationError:
        return False
    return True
