"""Frames the server sends (hello, cpu, job, result, done, ...) and `dump`, which serialises one
once for every socket. Pure."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .filecopy import FileCopy
from .values import (
    DEFAULT_TIMEOUT_SECONDS,
    AlertState,
    ErrorCode,
    HostStatus,
    JobState,
    Role,
    Severity,
    Topic,
)


class Frame(BaseModel):
    """The base of every frame, client to server or server to client: unknown fields are refused
    and a frame never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Hello(Frame):
    type: Literal["hello"] = "hello"
    user: str
    role: Role
    version: int
    workers: int | None = None  # exec workers alive now (fleetdeck's addition)


class Workers(Frame):
    """How many exec workers are alive; sent to `jobs` subscribers when it changes."""

    type: Literal["workers"] = "workers"
    alive: int
    names: list[str]


class Subscribed(Frame):
    type: Literal["subscribed"] = "subscribed"
    topics: list[Topic]
    hosts: list[str] | None = None  # the hosts `cpu` is narrowed to, if it is
    ref: str | None = None


class CpuSample(Frame):
    type: Literal["cpu"] = "cpu"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    ts: float
    total: Annotated[float, Field(ge=0, le=100)]
    percpu: list[Annotated[float, Field(ge=0, le=100)]]
    mem: Annotated[float, Field(ge=0, le=100)]
    load: Annotated[list[float], Field(min_length=3, max_length=3)]
    interval: Annotated[float, Field(gt=0)] = 1.0
    n: Annotated[int, Field(ge=1)] | None = None  # the agent's sample number since it started
    # Protocol v1.2; absent from older agents' samples (and net_* from an agent's first sample).
    disk: Annotated[float, Field(ge=0, le=100)] | None = None  # % used of the fullest local file system
    net_rx: Annotated[float, Field(ge=0)] | None = None  # bytes/s received, loopback left out
    net_tx: Annotated[float, Field(ge=0)] | None = None  # bytes/s sent, loopback left out
    uptime: Annotated[float, Field(ge=0)] | None = None  # seconds since the host booted


class Mount(Frame):
    """One local file system of a host, for its detail view."""

    mount: str
    used_pct: Annotated[float, Field(ge=0, le=100)]
    free_bytes: Annotated[int, Field(ge=0)]


class History(Frame):
    type: Literal["history"] = "history"
    host: str
    samples: list[CpuSample]


Labels = dict[str, str]


class Alert(Frame):
    """One alert transition: rule RULE on HOST began to fire or resolved at `since`."""

    type: Literal["alert"] = "alert"
    rule: str
    host: str
    state: AlertState
    value: float | None  # the metric's value that caused the transition; None for `offline`
    since: float  # unix seconds when this state began (the sample's own timestamp)
    severity: Severity
    summary: str
    labels: Labels
    silenced: bool = False


class Alerts(Frame):
    """What fires now, sent once to a client subscribing to `alerts`."""

    type: Literal["alerts"] = "alerts"
    alerts: list[Alert]


class Chat(Frame):
    type: Literal["chat"] = "chat"
    from_: Annotated[str, Field(alias="from")]
    text: str
    ts: float
    id: str | None = None  # lets a client skip a message it already has
    ref: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Job(Frame):
    model_config = ConfigDict(
        extra="forbid", frozen=True, serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    type: Literal["job"] = "job"
    job: str
    targets: str
    command: str
    hosts: int
    by: str
    ts: float
    state: JobState
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    summary: dict[str, int] | None = None
    finished: float | None = None
    cancelled_by: str | None = None
    error: str | None = None
    # `targets` with label selectors replaced by the hosts they matched when the job was queued.
    resolved_targets: str | None = None
    # No worker starts the job after this time (unix seconds): it expires instead.
    queued_until: float | None = None
    # The targets its token may reach (a target expression); the worker refuses hosts outside it.
    scope: str | None = None
    # A copy job (v1.2): the file pushed to every host; `command` is empty then. `copy` on the
    # wire (the attribute would hide BaseModel.copy).
    file_copy: FileCopy | None = Field(None, alias="copy")
    # A rolling job (v1.2): hosts per wave, how many may fail; the wave in progress of `waves`.
    batch: str | None = None
    max_failures: str | None = None
    wave: int | None = None
    waves: int | None = None
    ref: str | None = None

    @property
    def runs_on(self) -> str:
        """The expression the worker expands (and checks against the allowlist again)."""
        return self.resolved_targets or self.targets


class Outcome(Frame):
    """What happened on one host: a `result` before it is numbered into its job."""

    status: HostStatus
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    truncated: bool
    error: str | None = None


class _ResultHead(Frame):
    type: Literal["result"] = "result"
    job: str
    seq: int
    host: str


class Result(Outcome, _ResultHead):
    """One host's outcome in a job; its fields come after `type`, `job`, `seq` and `host`."""

    @classmethod
    def of(cls, job: str, seq: int, host: str, outcome: Outcome) -> Result:
        return cls(job=job, seq=seq, host=host, **outcome.model_dump())


class OutputGroup(Frame):
    hosts: str
    count: int
    status: HostStatus
    exit_code: int | None
    output: str
    output_truncated: bool = False


class Done(Frame):
    type: Literal["done"] = "done"
    job: str
    summary: dict[str, int]
    duration_ms: int
    groups: list[OutputGroup] = []
    retry_targets: str = ""
    error: str | None = None  # why no host ran, when the worker refused the job


class TermOpened(Frame):
    """A terminal is open: its id, the host it runs on and its size (with the `term_open`'s ref)."""

    type: Literal["term_opened"] = "term_opened"
    term: str
    host: str
    cols: int
    rows: int
    ref: str | None = None


class TermOutput(Frame):
    """What the terminal printed, in order (UTF-8 text; bytes that are not UTF-8 become U+FFFD)."""

    type: Literal["term_output"] = "term_output"
    term: str
    data: str


class TermClosed(Frame):
    """A terminal ended: the shell's exit status when it exited, and why, for a person."""

    type: Literal["term_closed"] = "term_closed"
    term: str
    exit_code: int | None
    reason: str
    ref: str | None = None


class Error(Frame):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None


_OMIT_WHEN_NONE = frozenset(
    {
        "ref",
        "error",
        "summary",
        "finished",
        "cancelled_by",
        "id",
        "hosts",
        "resolved_targets",
        "queued_until",
        "workers",
        "scope",
        "n",
        "disk",
        "net_rx",
        "net_tx",
        "uptime",
        "full",
        "gone",
    }
)


def dump(frame: BaseModel) -> str:
    """Serialise a server frame once; the same string goes to every socket."""
    omit = {name for name in _OMIT_WHEN_NONE & set(type(frame).model_fields) if getattr(frame, name) is None}
    return frame.model_dump_json(by_alias=True, exclude=omit)
