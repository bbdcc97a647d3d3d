"""Whether a terminal request may open, checked before any host is contacted: with the job key,
signed (with the current key, or the previous one within a queue timeout of a rotation), never
taken before (a replay) and not past its `queued_until`; with or without it, a host the
allowlist and the token's targets allow. A refusal is logged and audited as `job_refused`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fleetdeck_common.audit import AuditEntry
from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.jobs.previouskey import PreviousKey
from fleetdeck_common.jobs.signing import JobKey, verify
from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets
from fleetdeck_common.terms.store import TermStore
from fleetdeck_common.terms.wire import TermRequest

logger = logging.getLogger(__name__)


class TermAdmission:
    def __init__(
        self,
        store: TermStore,
        audit: AuditStore,
        policy: TargetPolicy,
        key: JobKey | None = None,
        previous: PreviousKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._audit = audit
        self._policy = policy
        self._key = key
        self._previous = previous
        self._clock = clock

    async def refusal(self, request: TermRequest, signature: str | None, entry_id: str) -> str | None:
        """Why the terminal must not open, or None if it may."""
        if self._key is not None:
            if not signature:
                return "no signature"
            if not self._verifies(request, signature):
                return "bad signature"
        if not await self._store.mark_taken(request.term, entry_id):
            return "replayed terminal id"
        if self._clock() > request.queued_until:
            return "older than the queue timeout"
        try:
            allowed = expand_targets(request.address, self._policy) == [request.address]
        except TargetError:
            allowed = False
        if not allowed:
            return f"{request.address} is not in this worker's allowed targets"
        if request.scope is not None:
            try:
                outside = parse_scope(request.scope).first_outside([request.host])
            except TargetError:
                return "the token's targets cannot be read"
            if outside is not None:
                return f"{outside} is outside the targets {request.user}'s token may reach"
        return None

    def _verifies(self, request: TermRequest, signature: str) -> bool:
        assert self._key is not None
        if verify(self._key, request, signature):
            return True
        previous = self._previous
        return (
            previous is not None
            and previous.covers(request.queued_until)
            and verify(previous.key, request, signature)
        )

    async def refuse(self, request: TermRequest, reason: str) -> None:
        logger.error(
            "terminal %s refused (%s): asked for by %r on %s; no host was contacted",
            request.term,
            reason,
            request.user,
            request.host,
        )
        await self._audit.append(
            AuditEntry(
                ts=round(self._clock(), 3),
                action="job_refused",
                outcome="refused",
                user=request.user,
                scope=request.scope,
                reason=reason,
                targets=request.host,
                hosts=1,
                term=request.term,
            )
        )
