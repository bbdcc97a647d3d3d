"""The audit trail in the broker: one stream, kept to a number of entries. Owns the audit key.

The stream has no expiry and nothing to do with job retention: it keeps its newest `keep` entries
(`FLEETDECK_AUDIT_KEEP`), trimmed in whole blocks as it grows, whatever their age.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from . import topics
from .acl import grant
from .audit import AuditEntry
from .broker import StreamLog

logger = logging.getLogger(__name__)

AUDIT_KEEP = 100_000
MAX_PAGE = 1000
_STREAM = topics.key("audit")
# The worker appends the jobs it refuses (`job_refused`); only the gateway reads the trail.
ACCESS = (grant(_STREAM, read=["gateway"], write=["gateway", "worker"]),)


@dataclass
class AuditPage:
    entries: list[AuditEntry]  # newest first
    next: str | None  # the `before` of the following page; None when there is no more


class AuditStore:
    def __init__(self, broker: StreamLog, keep: int = AUDIT_KEEP) -> None:
        self._broker = broker
        self.keep = keep

    async def append(self, entry: AuditEntry) -> str:
        """Add an entry; its stream id."""
        return await self._broker.stream_append(_STREAM, entry.to_fields(), self.keep)

    async def page(
        self, before: str | None = None, limit: int = 100, since: float | None = None
    ) -> AuditPage:
        """Up to `limit` entries older than the id `before` (or the newest), newest first, none
        older than `since` (unix seconds)."""
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self._broker.stream_before(_STREAM, before, limit)
        entries: list[AuditEntry] = []
        for row in rows:
            try:
                entry = AuditEntry.from_fields(row.id, dict(row.fields))
            except ValidationError:
                logger.warning("skipped audit entry %s: not an entry this version can read", row.id)
                continue
            if since is not None and entry.ts < since:
                return AuditPage(entries, None)
            entries.append(entry)
        return AuditPage(entries, rows[-1].id if len(rows) == limit else None)
