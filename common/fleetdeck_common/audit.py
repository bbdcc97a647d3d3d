"""The audit trail's entries: who did what, from where, when, and what came of it. Pure: the
gateway writes them (`fleetdeck_gateway.audit`; a worker writes `job_refused`), `auditstore` keeps
them, `fleetdeck audit` prints them.

An entry never holds a secret: no token, no token hash, no session id. It holds what a person
typed as targets and command, as they typed it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

AuditAction = Literal[
    "exec",
    "cancel",
    "login",
    "logout",
    "session_closed",
    "job_refused",
    "alert_rules",
    "silence",
    "unsilence",
    "term_open",
    "term_close",
]
# exec, cancel and login are accepted or refused; logout is accepted; session_closed is closed;
# job_refused (written by a worker holding the job key: a job it will not run) is refused;
# alert_rules (the rules file read again: accepted, or refused and the old rules kept), silence
# and unsilence (an alert silence made or expired) are accepted or refused; term_open (a terminal
# asked for) is accepted or refused, term_close (a terminal ended, with why) is closed.
AuditOutcome = Literal["accepted", "refused", "closed"]

_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_FORMS = "unix seconds, a duration back from now (90s, 15m, 1h, 7d, 2w) or an ISO 8601 time"


class AuditEntry(BaseModel):
    """One audited event. Fields that do not apply are None (and not stored)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None  # the stream id, once stored
    ts: float  # unix seconds, as the gateway (for job_refused: the worker) saw it
    action: AuditAction
    outcome: AuditOutcome
    user: str | None = None  # the token's name; None for a failed login
    role: str | None = None
    scope: str | None = None  # the token's targets, when it is limited to some
    address: str | None = None  # the client's address as the gateway saw it (proxies: X-Forwarded-For)
    via: Literal["http", "ws"] | None = None
    code: str | None = None  # a refusal's error code: forbidden, invalid_targets, unauthorized, ...
    reason: str | None = None  # why it was refused, or why a session was closed
    job: str | None = None
    owner: str | None = None  # cancel: who started the job
    targets: str | None = None  # as typed (long expressions are cut, see `fleetdeck_gateway.audit`)
    hosts: int | None = None  # how many hosts the targets expanded to
    host_set: str | None = None  # those hosts, folded: 127.0.0.[2-4,9]
    command: str | None = None
    timeout: float | None = None
    suppressed: int | None = None  # failed logins since the previous one that were not written one by one
    rules: int | None = None  # alert_rules: how many rules the file holds
    silence: str | None = None  # silence, unsilence: the silence's id
    rule: str | None = None  # silence: the rule it mutes
    until: float | None = None  # silence: when it ends
    comment: str | None = None  # silence: why
    term: str | None = None  # term_open, term_close: the terminal's id
    exit_code: int | None = None  # term_close: the shell's exit status, when it exited

    def to_fields(self) -> dict[str, str]:
        """The entry as stream fields (strings; absent fields left out)."""
        data = self.model_dump(exclude={"id"}, exclude_none=True)
        return {key: str(value) for key, value in data.items()}

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[str, str]) -> AuditEntry:
        return cls.model_validate({**fields, "id": entry_id})


def is_entry_id(text: str) -> bool:
    """Whether `text` is a stream id (`1764096000000-0`), safe to page from."""
    return _ENTRY_ID.match(text) is not None


def parse_since(text: str, now: float) -> float:
    """`since` as unix seconds: from unix seconds, a duration back from `now`, or an ISO 8601 time
    (UTC when it names no zone). ValueError saying which forms work."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{1,12}(\.\d+)?", text):
            return float(text)
        duration = _DURATION.match(text.lower())
        if duration:
            return now - int(duration.group(1)) * _UNIT_SECONDS[duration.group(2)]
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = datetime.fromisoformat(text.replace(" ", "+"))  # a '+' that a URL turned into ' '
    except ValueError:
        raise ValueError(f"since must be {SINCE_FORMS}, not {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
