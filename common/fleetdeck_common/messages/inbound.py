"""Frames a client sends (subscribe, chat, exec, ...), and the parser that refuses what the
protocol does not allow. Pure."""

from __future__ import annotations

import json
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from .filecopy import FileCopy
from .outbound import Error, Frame
from .rolling import Batch, MaxFailures
from .values import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_CHAT_CHARS,
    MAX_COMMAND_CHARS,
    MAX_REF_CHARS,
    MAX_TARGETS_CHARS,
    MAX_TERM_INPUT_CHARS,
    MAX_TIMEOUT_SECONDS,
    ErrorCode,
    FleetFormat,
    HostsFormat,
    JobId,
    Ref,
    TermCols,
    TermId,
    TermRows,
    Topic,
)

HostName = Annotated[str, Field(min_length=1, max_length=253)]
MAX_SUBSCRIBED_HOSTS = 4096


class Subscribe(Frame):
    type: Literal["subscribe"]
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(get_args(Topic)))]
    # With `cpu`: only these hosts' samples and history (v1.1); without, every host.
    hosts: Annotated[list[HostName], Field(max_length=MAX_SUBSCRIBED_HOSTS)] | None = None
    # With `fleet`: "compact" for binary fleet frames (v1.2); JSON when left out.
    fleet_format: FleetFormat | None = None
    # With `hosts`: "changes" for the list once, then only what changed (v1.2); "full" when left out.
    hosts_format: HostsFormat | None = None
    ref: Ref | None = None

    @model_validator(mode="after")
    def _hosts_narrow_cpu(self) -> Subscribe:
        if self.hosts is not None and "cpu" not in self.topics:
            raise ValueError("'hosts' narrows the cpu topic: subscribe to cpu with it")
        if self.fleet_format is not None and "fleet" not in self.topics:
            raise ValueError("'fleet_format' says how fleet frames come: subscribe to fleet with it")
        if self.hosts_format is not None and "hosts" not in self.topics:
            raise ValueError("'hosts_format' says how hosts frames come: subscribe to hosts with it")
        return self


class Unsubscribe(Frame):
    type: Literal["unsubscribe"]
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(get_args(Topic)))]
    ref: Ref | None = None


class ChatSend(Frame):
    type: Literal["chat"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_CHAT_CHARS)]
    ref: Ref | None = None


class ExecRequest(Frame):
    """What to run where: the body of an `exec` frame and of `POST /api/jobs`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, serialize_by_alias=True, validate_by_name=True, validate_by_alias=True
    )

    targets: Annotated[str, Field(min_length=1, max_length=MAX_TARGETS_CHARS)]
    command: Annotated[str, Field(max_length=MAX_COMMAND_CHARS)] = ""
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = DEFAULT_TIMEOUT_SECONDS
    # v1.2: a file to push instead of a command to run; `copy` on the wire (the attribute would
    # hide BaseModel.copy).
    file_copy: FileCopy | None = Field(None, alias="copy")
    # v1.2 rolling jobs: hosts per wave, and how many may fail before no more start.
    batch: Batch = None
    max_failures: MaxFailures = None

    @field_validator("command")
    @classmethod
    def _runnable(cls, command: str) -> str:
        if "\x00" in command:
            raise ValueError("the command contains a NUL byte, which no shell can run")
        return command

    @model_validator(mode="after")
    def _command_or_copy(self) -> ExecRequest:
        if self.file_copy is not None and self.command:
            raise ValueError(
                "a job either runs a command or copies a file: give 'command' or 'copy', not both"
            )
        if self.file_copy is None and not self.command.strip():
            raise ValueError("the command is blank: nothing to run")
        return self

    def describe(self) -> str:
        """What the job does, in one line (the command, or the copy)."""
        return self.file_copy.describe() if self.file_copy is not None else self.command


class Exec(ExecRequest):
    type: Literal["exec"]
    ref: Ref | None = None


class Cancel(Frame):
    type: Literal["cancel"]
    job: JobId
    ref: Ref | None = None


class Watch(Frame):
    type: Literal["watch"]
    job: JobId
    after: Annotated[int, Field(ge=0)] = 0
    ref: Ref | None = None


class TermOpen(Frame):
    """Open a terminal on one host (`host`: a target term naming exactly one host)."""

    type: Literal["term_open"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    cols: TermCols = 80
    rows: TermRows = 24
    ref: Ref | None = None


class TermInput(Frame):
    """Keystrokes (or a paste) for an open terminal, as text."""

    type: Literal["term_input"]
    term: TermId
    data: Annotated[str, Field(min_length=1, max_length=MAX_TERM_INPUT_CHARS)]
    ref: Ref | None = None


class TermResize(Frame):
    type: Literal["term_resize"]
    term: TermId
    cols: TermCols
    rows: TermRows
    ref: Ref | None = None


class TermClose(Frame):
    type: Literal["term_close"]
    term: TermId
    ref: Ref | None = None


TermFrame = TermOpen | TermInput | TermResize | TermClose
ClientFrame = Annotated[
    Subscribe
    | Unsubscribe
    | ChatSend
    | Exec
    | Cancel
    | Watch
    | TermOpen
    | TermInput
    | TermResize
    | TermClose,
    Field(discriminator="type"),
]
CLIENT_TYPES = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "chat",
        "exec",
        "cancel",
        "watch",
        "term_open",
        "term_input",
        "term_resize",
        "term_close",
    }
)
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
