"""Silences: a rule and/or a target expression muted until a time, with a comment. A silenced
alert still fires and shows, marked `silenced`; delivery drops it. Pure."""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetdeck_common.alerts.expr import parse_duration
from fleetdeck_common.alerts.rules import RULE_NAME_PATTERN, check_targets

from ..history.select import KnownHost, select_hosts

MAX_COMMENT_CHARS = 1000
MAX_SILENCE_SECONDS = 365 * 86400.0
KEEP_EXPIRED_SECONDS = 86400.0  # an expired silence is still listed for a day, then dropped


class Silence(BaseModel):
    """One silence as stored and listed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    rule: str | None = None
    targets: str | None = None
    until: float
    comment: str
    by: str
    created: float

    def active(self, now: float) -> bool:
        return now < self.until

    def listed(self, now: float) -> dict[str, Any]:
        """As `GET /api/alerts/silences` shows it."""
        return {**self.model_dump(), "active": self.active(now)}


class SilenceRequest(BaseModel):
    """`POST /api/alerts/silences`'s body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str | None = Field(None, pattern=RULE_NAME_PATTERN)
    targets: str | None = Field(None, max_length=16384)
    until: float | str | None = None
    for_: str | float | None = Field(None, alias="for")
    comment: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)


def _until(request: SilenceRequest, now: float) -> float:
    if (request.until is None) == (request.for_ is None):
        raise ValueError("give exactly one of until (a time) and for (a duration such as 2h)")
    if request.for_ is not None:
        try:
            seconds = parse_duration(request.for_)
        except ValueError as exc:
            raise ValueError(f"for: {exc}") from None
        if seconds <= 0:
            raise ValueError("for: must be more than 0s")
        return now + seconds
    until = request.until
    if isinstance(until, str):
        try:
            moment = datetime.fromisoformat(until.strip())
        except ValueError:
            raise ValueError(f"until: {until[:40]!r} is not unix seconds or an ISO 8601 time") from None
        until = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if until is None or not math.isfinite(until) or until <= now:
        raise ValueError("until: must be a time in the future")
    if until - now > MAX_SILENCE_SECONDS:
        raise ValueError("until: a silence lasts at most a year")
    return float(until)


def make_silence(request: SilenceRequest, by: str, now: float, rules: Collection[str]) -> Silence:
    """The silence a request asks for; ValueError with a sentence naming the field if it cannot be."""
    if request.rule is None and request.targets is None:
        raise ValueError("give a rule, targets or both: a silence mutes some alerts, not all")
    if request.rule is not None and request.rule not in rules:
        raise ValueError(f"rule: there is no rule named {request.rule!r}")
    targets = None
    if request.targets is not None:
        try:
            targets = check_targets(request.targets)
        except ValueError as exc:
            raise ValueError(f"targets: {exc}") from None
    comment = request.comment.strip()
    if not comment:
        raise ValueError("comment: say why (it is shown beside the silenced alerts and in the audit trail)")
    return Silence(
        id=secrets.token_hex(6),
        rule=request.rule,
        targets=targets,
        until=round(_until(request, now), 3),
        comment=comment,
        by=by,
        created=round(now, 3),
    )


class SilenceMatcher:
    """Which (rule, host) the active silences mute now; each silence's targets expanded once."""

    def __init__(self, silences: Sequence[Silence], known: Sequence[KnownHost], now: float) -> None:
        self._muting: list[tuple[str | None, frozenset[str] | None]] = []
        for silence in silences:
            if not silence.active(now):
                continue
            hosts = None
            if silence.targets is not None:
                try:
                    hosts = frozenset(select_hosts(silence.targets, known))
                except ValueError:
                    hosts = frozenset()  # a stored expression that no longer expands mutes nothing
            self._muting.append((silence.rule, hosts))

    def __call__(self, rule: str, host: str) -> bool:
        return any(
            (muted_rule is None or muted_rule == rule) and (hosts is None or host in hosts)
            for muted_rule, hosts in self._muting
        )
