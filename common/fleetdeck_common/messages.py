"""The v1 WebSocket frames as models, and the parser that refuses what the protocol does not allow.

Pure: no I/O. The gateway parses every browser frame with `parse_client_frame` and builds every
outgoing frame from these models, so the wire format lives in one place.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

Topic = Literal["cpu", "hosts", "chat", "jobs", "fleet"]
Role = Literal["viewer", "operator"]
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

Tone = Literal["good", "bad", "slow", "unreachable", "muted"]

TOPICS: tuple[Topic, ...] = get_args(Topic)
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
FINISHED_STATES: frozenset[JobState] = frozenset({"done", "cancelled", "expired"})
HOST_STATUSES: tuple[HostStatus, ...] = get_args(HostStatus)
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
# How each status looks to a person (colours in the terminal and on the dashboard).
STATUS_TONES: dict[HostStatus, Tone] = {
    "ok": "good",
    "failed": "bad",
    "error": "bad",
    "timeout": "slow",
    "lost": "slow",
    "unreachable": "unreachable",
    "auth_failed": "unreachable",
    "cancelled": "muted",
}
assert set(STATUS_TONES) == set(HOST_STATUSES), "every host status needs a tone"

PROTOCOL_VERSION = 1
MAX_COMMAND_CHARS = 8192
MAX_TARGETS_CHARS = 16384
MAX_TIMEOUT_SECONDS = 86400.0
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_CHAT_CHARS = 2000
MAX_REF_CHARS = 64

Ref = Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS)]
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=JOB_ID_PATTERN)]
_job_id_adapter: TypeAdapter[str] = TypeAdapter(JobId)


def is_job_id(text: str) -> bool:
    """Whether `text` could name a job (so it is safe to look up)."""
    try:
        _job_id_adapter.validate_python(text)
    except ValidationError:
        return False
    return True


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- client to server -------------------------------------------------------------------------


HostName = Annotated[str, Field(min_length=1, max_length=253)]
MAX_SUBSCRIBED_HOSTS = 4096


class Subscribe(_Frame):
    type: Literal["subscribe"]
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(get_args(Topic)))]
    # With `cpu`: only these hosts' samples and history (v1.1); without, every host.
    hosts: Annotated[list[HostName], Field(max_length=MAX_SUBSCRIBED_HOSTS)] | None = None
    ref: Ref | None = None

    @model_validator(mode="after")
    def _hosts_narrow_cpu(self) -> Subscribe:
        if self.hosts is not None and "cpu" not in self.topics:
            raise ValueError("'hosts' narrows the cpu topic: subscribe to cpu with it")
        return self


class Unsubscribe(_Frame):
    type: Literal["unsubscribe"]
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(get_args(Topic)))]
    ref: Ref | None = None


class ChatSend(_Frame):
    type: Literal["chat"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_CHAT_CHARS)]
    ref: Ref | None = None


class ExecRequest(_Frame):
    """What to run where: the body of an `exec` frame and of `POST /api/jobs`."""

    targets: Annotated[str, Field(min_length=1, max_length=MAX_TARGETS_CHARS)]
    command: Annotated[str, Field(min_length=1, max_length=MAX_COMMAND_CHARS)]
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = DEFAULT_TIMEOUT_SECONDS

    @field_validator("command")
    @classmethod
    def _runnable(cls, command: str) -> str:
        if not command.strip():
            raise ValueError("the command is blank: nothing to run")
        if "\x00" in command:
            raise ValueError("the command contains a NUL byte, which no shell can run")
        return command


class Exec(ExecRequest):
    type: Literal["exec"]
    ref: Ref | None = None


class Cancel(_Frame):
    type: Literal["cancel"]
    job: JobId
    ref: Ref | None = None


class Watch(_Frame):
    type: Literal["watch"]
    job: JobId
    after: Annotated[int, Field(ge=0)] = 0
    ref: Ref | None = None


ClientFrame = Annotated[
    Subscribe | Unsubscribe | ChatSend | Exec | Cancel | Watch, Field(discriminator="type")
]
CLIENT_TYPES = frozenset({"subscribe", "unsubscribe", "chat", "exec", "cancel", "watch"})
_client_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class ProtocolError(Exception):
    """A frame the server refuses; becomes an `error` frame, the connection stays open."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.ref = ref

    def frame(self) -> Error:
        return Error(code=self.code, message=self.message, ref=self.ref)


def describe_validation_error(exc: ValidationError, skip_first: bool = False) -> str:
    """One line for a person: which field was wrong and why."""
    parts = []
    for err in exc.errors()[:3]:
        loc = err["loc"][1:] if skip_first else err["loc"]
        where = ".".join(str(p) for p in loc) or "frame"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_client_frame(raw: str | bytes) -> ClientFrame:
    """Parse one frame from a browser, or raise ProtocolError saying what was wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_request", f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_request", "frame nests too deeply to be a fleetdeck message") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_request", "frame must be a JSON object with a 'type'")
    ref = data.get("ref")
    ref = ref if isinstance(ref, str) and 0 < len(ref) <= MAX_REF_CHARS else None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_request", "frame has no 'type' string", ref)
    if kind not in CLIENT_TYPES:
        known = ", ".join(sorted(CLIENT_TYPES))
        raise ProtocolError("unknown_type", f"unknown type {kind[:40]!r}; expected one of {known}", ref)
    try:
        return _client_adapter.validate_python(data)
    except RecursionError:
        raise ProtocolError("bad_request", "frame nests too deeply to be a fleetdeck message", ref) from None
    except ValidationError as exc:
        raise ProtocolError(
            "bad_request", f"invalid {kind}: {describe_validation_error(exc, skip_first=True)}", ref
        ) from None


# --- server to client -------------------------------------------------------------------------


class Hello(_Frame):
    type: Literal["hello"] = "hello"
    user: str
    role: Role
    version: int
    workers: int | None = None  # exec workers alive now (fleetdeck's addition)


class Workers(_Frame):
    """How many exec workers are alive; sent to `jobs` subscribers when it changes."""

    type: Literal["workers"] = "workers"
    alive: int
    names: list[str]


class Subscribed(_Frame):
    type: Literal["subscribed"] = "subscribed"
    topics: list[Topic]
    hosts: list[str] | None = None  # the hosts `cpu` is narrowed to, if it is
    ref: str | None = None


class CpuSample(_Frame):
    type: Literal["cpu"] = "cpu"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    ts: float
    total: Annotated[float, Field(ge=0, le=100)]
    percpu: list[Annotated[float, Field(ge=0, le=100)]]
    mem: Annotated[float, Field(ge=0, le=100)]
    load: Annotated[list[float], Field(min_length=3, max_length=3)]
    interval: Annotated[float, Field(gt=0)] = 1.0
    n: Annotated[int, Field(ge=1)] | None = None  # the agent's sample number since it started


class History(_Frame):
    type: Literal["history"] = "history"
    host: str
    samples: list[CpuSample]


Labels = dict[str, str]


class HostInfo(_Frame):
    host: str
    online: bool
    last_seen: float
    cpus: int
    labels: Labels = {}
    address: str = ""  # how the exec worker reaches it over SSH


class FleetHost(_Frame):
    """One host in a `fleet` frame: the latest summary, not the samples."""

    host: str
    online: bool
    total: float | None
    mem: float | None
    load1: float | None
    labels: Labels


class Fleet(_Frame):
    type: Literal["fleet"] = "fleet"
    ts: float
    full: bool  # every known host (the first frame after subscribing), else only those that changed
    hosts: list[FleetHost]


class Hosts(_Frame):
    type: Literal["hosts"] = "hosts"
    hosts: list[HostInfo]


class Chat(_Frame):
    type: Literal["chat"] = "chat"
    from_: Annotated[str, Field(alias="from")]
    text: str
    ts: float
    id: str | None = None  # lets a client skip a message it already has
    ref: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Job(_Frame):
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
    ref: str | None = None

    @property
    def runs_on(self) -> str:
        """The expression the worker expands (and checks against the allowlist again)."""
        return self.resolved_targets or self.targets


class Outcome(_Frame):
    """What happened on one host: a `result` before it is numbered into its job."""

    status: HostStatus
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    truncated: bool
    error: str | None = None


class _ResultHead(_Frame):
    type: Literal["result"] = "result"
    job: str
    seq: int
    host: str


class Result(Outcome, _ResultHead):
    """One host's outcome in a job; its fields come after `type`, `job`, `seq` and `host`."""

    @classmethod
    def of(cls, job: str, seq: int, host: str, outcome: Outcome) -> Result:
        return cls(job=job, seq=seq, host=host, **outcome.model_dump())


def escaped_size(text: str) -> int:
    """Bytes `text` takes in a frame as sent: UTF-8 with JSON escapes (a control character takes
    6, a quote or backslash 2), as `dump` and the HTTP API write it."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def _fitting_start(text: str, limit: int) -> str:
    """The longest start of `text` whose escaped size is at most `limit` (by bisection)."""
    low, high = 0, min(len(text), limit)  # every character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if escaped_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def fit_output(outcome: Outcome, limit: int) -> Outcome:
    """`outcome` with its stdout and its stderr each cut to at most `limit` bytes as sent (see
    `escaped_size`), and `truncated` set when anything was cut: FLEETDECK_OUTPUT_LIMIT bounds what
    a result costs to store and to send, whatever bytes the command printed. Pure."""
    cut: dict[str, Any] = {}
    for name in ("stdout", "stderr"):
        text: str = getattr(outcome, name)
        if len(text) * 6 > limit and escaped_size(text) > limit:  # 6: the most a character takes
            cut[name] = _fitting_start(text, limit)
    if not cut:
        return outcome
    return outcome.model_copy(update={**cut, "truncated": True})


class OutputGroup(_Frame):
    hosts: str
    count: int
    status: HostStatus
    exit_code: int | None
    output: str
    output_truncated: bool = False


class Done(_Frame):
    type: Literal["done"] = "done"
    job: str
    summary: dict[str, int]
    duration_ms: int
    groups: list[OutputGroup] = []
    retry_targets: str = ""
    error: str | None = None  # why no host ran, when the worker refused the job


class Error(_Frame):
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
    }
)


def dump(frame: BaseModel) -> str:
    """Serialise a server frame once; the same string goes to every socket."""
    omit = {name for name in _OMIT_WHEN_NONE & set(type(frame).model_fields) if getattr(frame, name) is None}
    return frame.model_dump_json(by_alias=True, exclude=omit)


def protocol_description() -> dict[str, Any]:
    """The protocol's values for clients, so the dashboard copies none of them."""
    return {
        "version": PROTOCOL_VERSION,
        "topics": list(TOPICS),
        "job_states": list(JOB_STATES),
        "finished_states": sorted(FINISHED_STATES),
        "host_statuses": list(HOST_STATUSES),
        "status_tones": dict(STATUS_TONES),
        "error_codes": list(ERROR_CODES),
        "limits": {
            "command_chars": MAX_COMMAND_CHARS,
            "targets_chars": MAX_TARGETS_CHARS,
            "timeout_seconds": MAX_TIMEOUT_SECONDS,
            "default_timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
            "chat_chars": MAX_CHAT_CHARS,
            "ref_chars": MAX_REF_CHARS,
        },
    }
