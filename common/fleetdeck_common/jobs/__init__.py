"""Exec jobs in the broker: the store (`store`), its key layout (`keys`), the rules that must
happen in one step (`rules`, written for Redis in `redis` and for memory in `memory`), reading
results a page at a time (`results`) and jobs that expire unrun (`expiry`)."""

from __future__ import annotations

from .results import PAGE_CHARS, RESULTS_PAGE, JobResults, ResultsPage, page_size
from .rules import Fenced, JobRules, Submission
from .store import (
    JOB_INDEX_SIZE,
    JOB_RETENTION_SECONDS,
    CancelRequest,
    JobBackend,
    JobStore,
    QueuedJob,
    WorkerInfo,
    rules_for,
)

__all__ = [
    "JOB_INDEX_SIZE",
    "JOB_RETENTION_SECONDS",
    "PAGE_CHARS",
    "RESULTS_PAGE",
    "CancelRequest",
    "Fenced",
    "JobBackend",
    "JobResults",
    "JobRules",
    "JobStore",
    "QueuedJob",
    "ResultsPage",
    "Submission",
    "WorkerInfo",
    "page_size",
    "rules_for",
]
