"""Terminals in the audit trail: each `term_open` (accepted or refused) and each end."""

from __future__ import annotations

import time

from fleetdeck_common.audit import AuditEntry
from fleetdeck_common.messages import ProtocolError

from ..auth.identity import Identity
from ..auth.peer import current_peer
from ..services.audittrail import AuditTrail


async def opened(
    trail: AuditTrail, who: Identity, host: str, term: str | None, refusal: ProtocolError | None = None
) -> None:
    peer = current_peer()
    await trail.record(
        AuditEntry(
            ts=round(time.time(), 3),
            action="term_open",
            outcome="refused" if refusal else "accepted",
            user=who.name,
            role=who.role,
            scope=who.scope,
            address=peer.address if peer else None,
            via=peer.via if peer else None,
            code=refusal.code if refusal else None,
            reason=refusal.message if refusal else None,
            targets=host[:253],
            term=term,
        )
    )


async def closed(
    trail: AuditTrail, user: str, host: str, term: str, exit_code: int | None, reason: str
) -> None:
    await trail.record(
        AuditEntry(
            ts=round(time.time(), 3),
            action="term_close",
            outcome="closed",
            user=user,
            targets=host,
            term=term,
            exit_code=exit_code,
            reason=reason,
        )
    )
