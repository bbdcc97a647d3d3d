"""The audit trail from the gateway's side: what each audited event records.

Audited: every exec attempt that reaches the job service (accepted with its job id, or refused
with the reason: role, expired token, scope, allowlist, host cap, bad targets), every cancel,
and every login, failed login, logout and socket closed because its token was revoked, rotated,
changed or expired. Each entry names who (token name and role), from which address and over
what (`peer`), when, and for exec the targets, the hosts they expanded to (count and folded set),
command and timeout.

Each entry goes to the audit stream (`auditstore`) and, as one INFO line of JSON, to the log of
the logger `fleetdeck_gateway.audit`: ship logs elsewhere and nobody with access to Redis alone can
rewrite the trail. Recording never fails the action it records: when the broker cannot take an
entry, the log line at ERROR is all there is of it. No secret goes into either: no token, no
token hash, no session id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fleetdeck_common.audit import AuditEntry, is_entry_id, parse_since
from fleetdeck_common.auditstore import MAX_PAGE, AuditPage, AuditStore
from fleetdeck_common.grouping import fold_hosts
from fleetdeck_common.messages import ExecRequest, Job, ProtocolError

from ..alerts.silences import Silence
from ..auth.identity import Identity
from ..auth.peer import Peer, current_peer
from ..auth.revocation import TokenClaim

# Named for the docs and for log shipping rules, not for where this module lives.
logger = logging.getLogger("fleetdeck_gateway.audit")

# Targets may be 16 KiB and a folded host set as long; the audit keeps the start of each (and
# says how much is missing), so a flood of hostile expressions cannot fill Redis through it.
# Commands are kept whole (8 KiB at most).
KEEP_TARGETS_CHARS = 2048
KEEP_HOST_SET_CHARS = 4096
DEFAULT_PAGE = 100


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _who(identity: Identity) -> dict[str, Any]:
    return {"user": identity.name, "role": identity.role, "scope": identity.scope}


def _where(peer: Peer | None) -> dict[str, Any]:
    return {} if peer is None else {"address": peer.address, "via": peer.via}


class AuditTrail:
    def __init__(self, store: AuditStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def _now(self) -> float:
        return round(self._clock(), 3)

    async def page(self, query: AuditQuery) -> AuditPage:
        """The entries `GET /api/audit` asked for, newest first."""
        return await self.store.page(query.before, query.limit, query.since)

    async def record(self, entry: AuditEntry) -> None:
        """Store the entry and log it; never raises."""
        line = json.dumps(entry.model_dump(exclude={"id"}, exclude_none=True), ensure_ascii=False)
        try:
            await self.store.append(entry)
        except Exception as exc:
            logger.error("audit entry not stored (%s); this line is all there is of it: %s", exc, line)
            return
        logger.info("audit %s", line)

    async def exec_attempt(
        self,
        who: Identity,
        request: ExecRequest,
        hosts: list[str] | None,
        job: Job | None = None,
        refusal: ProtocolError | None = None,
    ) -> None:
        """An exec request: queued as `job`, or refused; `hosts` once the targets expanded."""
        await self.record(
            AuditEntry(
                ts=self._now(),
                action="exec",
                outcome="refused" if refusal else "accepted",
                **_who(who),
                **_where(current_peer()),
                code=refusal.code if refusal else None,
                reason=refusal.message if refusal else None,
                job=job.job if job else None,
                targets=clip(request.targets.strip(), KEEP_TARGETS_CHARS),
                hosts=None if hosts is None else len(hosts),
                host_set=None if hosts is None else clip(fold_hosts(hosts), KEEP_HOST_SET_CHARS),
                command=request.describe(),
                timeout=request.timeout,
            )
        )

    async def cancel(
        self, who: Identity, job_id: str, job: Job | None, refusal: ProtocolError | None = None
    ) -> None:
        """A cancel request for `job_id` (`job` when it exists); a finished job's cancel is
        accepted and changes nothing, and says so."""
        reason = refusal.message if refusal else None
        if refusal is None and job is not None and job.state not in ("queued", "running"):
            reason = f"the job had already ended ({job.state})"
        await self.record(
            AuditEntry(
                ts=self._now(),
                action="cancel",
                outcome="refused" if refusal else "accepted",
                **_who(who),
                **_where(current_peer()),
                code=refusal.code if refusal else None,
                reason=reason,
                job=job_id,
                owner=job.by if job else None,
                targets=clip(job.targets, KEEP_TARGETS_CHARS) if job else None,
                hosts=job.hosts if job else None,
                command=job.command if job else None,
            )
        )

    async def login(self, identity: Identity) -> None:
        await self.record(
            AuditEntry(
                ts=self._now(), action="login", outcome="accepted", **_who(identity), **_where(current_peer())
            )
        )

    async def login_failed(self, address: str, left_out: int | None, throttled_for: int | None) -> None:
        """A failed login: always a WARNING with the address (never the token); an audit entry
        unless `left_out` is None (too many failed logins lately, see `loginguard`)."""
        logger.warning("login refused from %s: unknown or expired token", address)
        if throttled_for is not None:
            logger.warning(
                "logins from %s refused for the next %d s: too many failed logins", address, throttled_for
            )
        if left_out is None:
            return
        peer = current_peer()
        await self.record(
            AuditEntry(
                ts=self._now(),
                action="login",
                outcome="refused",
                address=address,
                via=peer.via if peer else None,
                code="unauthorized",
                reason="unknown or expired token",
                suppressed=left_out or None,
            )
        )

    async def logout(self, identity: Identity) -> None:
        await self.record(
            AuditEntry(
                ts=self._now(),
                action="logout",
                outcome="accepted",
                **_who(identity),
                **_where(current_peer()),
            )
        )

    async def sessions_closed(self, watches: Iterable[TokenClaim]) -> None:
        """Sockets closed because their token no longer holds (from `Revocation.sweep`)."""
        for watch in watches:
            await self.record(
                AuditEntry(
                    ts=self._now(),
                    action="session_closed",
                    outcome="closed",
                    **_who(watch.identity),
                    **_where(watch.peer),
                    reason=watch.reason,
                )
            )

    async def alert_rules(self, path: str, rules: int | None, error: str | None) -> None:
        """The alert rules file read again: its rules in use, or refused (the old ones kept)."""
        await self.record(
            AuditEntry(
                ts=self._now(),
                action="alert_rules",
                outcome="refused" if error else "accepted",
                reason=error,
                rules=rules,
                comment=clip(path, KEEP_TARGETS_CHARS),
            )
        )

    async def silence(
        self,
        who: Identity,
        action: Literal["silence", "unsilence"],
        silence: Silence | None = None,
        silence_id: str | None = None,
        refusal: str | None = None,
    ) -> None:
        """A silence made or expired by `who`, or the attempt refused with why."""
        await self.record(
            AuditEntry(
                ts=self._now(),
                action=action,
                outcome="refused" if refusal else "accepted",
                **_who(who),
                **_where(current_peer()),
                code="bad_request" if refusal else None,
                reason=refusal,
                silence=silence.id if silence else silence_id,
                rule=silence.rule if silence else None,
                targets=clip(silence.targets, KEEP_TARGETS_CHARS) if silence and silence.targets else None,
                until=silence.until if silence and action == "silence" else None,
                comment=silence.comment if silence and action == "silence" else None,
            )
        )


@dataclass(frozen=True)
class AuditQuery:
    """`GET /api/audit`'s query: `before` (an entry id), `limit` (1-1000), `since`."""

    before: str | None = None
    limit: int = DEFAULT_PAGE
    since: float | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], now: float) -> AuditQuery:
        """ValueError saying what is wrong."""
        before = params.get("before") or None
        if before is not None and not is_entry_id(before):
            raise ValueError("before must be an entry id from a previous page (like 1764096000000-0)")
        raw_limit = params.get("limit") or str(DEFAULT_PAGE)
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE}")
        since = params.get("since") or None
        return cls(before, int(raw_limit), None if since is None else parse_since(since, now))
