"""What gateways and workers say about terminals over the broker, pure: the signed request that
opens one, and the messages on each side's channel (input, resizes, acknowledgements and closes
to the worker; output, opening and ending to the gateway; beats both ways)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# Output in flight per terminal (characters the worker sent that the gateway has not yet passed to
# its socket): past it the worker stops reading the SSH channel until acknowledgements come.
WINDOW_CHARS = 1024 * 1024
BEAT_SECONDS = 2.0  # each side tells the other which terminals it still holds this often
LOST_AFTER = 7.0  # a side silent this long is gone: its terminals end (worker deaths within 10 s)


class TermRequest(BaseModel):
    """A terminal to open, as the gateway queues it (signed over every field with the job key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str
    host: str  # as the operator named it (the recording's and the audit's host)
    address: str  # where SSH goes
    user: str
    scope: str | None = None
    cols: int
    rows: int
    gateway: str  # whose channel hears the terminal's output
    ts: float
    queued_until: float  # no worker opens it after this


Kind = Literal["input", "resize", "close", "ack", "beat", "taken", "opened", "output", "closed"]


class TermMessage(BaseModel):
    """One message on a terminal channel; which fields are set depends on `k`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: Kind
    term: str = ""
    data: str | None = None  # input, output
    cols: int | None = None  # resize
    rows: int | None = None
    n: int | None = None  # ack: characters of output the gateway's socket has taken
    exit_code: int | None = None  # closed
    reason: str | None = None  # close, closed
    sender: str = ""  # beat, taken: the worker's name or the gateway's id
    terms: list[str] | None = None  # beat: the terminals the sender still holds

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True, exclude_defaults=True)

    @classmethod
    def decode(cls, raw: str) -> TermMessage:
        """ValueError (pydantic's) for anything that is not a terminal message."""
        return cls.model_validate_json(raw)
