"""The job rules that must happen in one step: what each promises, whichever broker keeps them.

Each rule is written twice, side by side: as a Lua script run inside Redis (`redis.py`) and as
plain steps on the memory broker (`memory.py`). `tests/test_jobstore_contract.py` holds both to
the same cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class Submission:
    """Everything that makes a job exist, written in one step by `JobRules.enqueue`."""

    record_key: str
    record: str
    ttl: float
    index_key: str
    index_value: str
    index_limit: int
    stream: str
    entry: Mapping[str, str]
    channel: str


class Fenced(Enum):
    """What a fenced append did."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"  # an entry at this position was written before: a retry, nothing added
    NOT_HOLDER = "not_holder"  # someone else holds the lease
    NO_LEASE = "no_lease"  # nobody holds it: it expired, or the broker lost its data


class JobRules(Protocol):
    """Enqueueing, leases and fenced appends, each checked and written in one step."""

    async def enqueue(self, submission: Submission) -> bool:
        """Store the record (expiring after `ttl`), list it in the capped index, queue the entry
        and announce the record, all or nothing.

        False (and nothing written) if the record exists already, so a retried submission
        cannot queue a job twice.
        """
        ...

    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease if free, or extend it if `owner` holds it; False if someone else does."""
        ...

    async def release_lease(self, key: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""
        ...

    async def append_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str, marker: str, position: int
    ) -> Fenced:
        """Append only while `owner` holds `lease`, and only if `position` is past the last
        position written (kept in `marker`, which keeps its expiry as it moves on): checked and
        written in one step, so a retried append never adds an entry twice."""
        ...
