"""Which recent jobs ran on one host, and what each came to there: the marks on a host's chart
(`GET /api/jobs?host=NAME`). Pure: target expansion and the job's `done` are passed in."""

from __future__ import annotations

from collections.abc import Callable

from fleetdeck_common.messages import Done, Job
from fleetdeck_common.targets import TargetError

MAX_HOST_CHARS = 253  # a DNS name's longest


def host_param(raw: str | None) -> str | None:
    """The `host` query parameter, or None when absent; ValueError with a sentence if unusable."""
    if raw is None:
        return None
    if not raw or len(raw) > MAX_HOST_CHARS or not raw.isprintable():
        raise ValueError(f"host must be a host name of 1 to {MAX_HOST_CHARS} printable characters")
    return raw


def ran_on(job: Job, host: str, expand: Callable[[str], list[str]]) -> bool:
    """Whether `host` is among the hosts the job was for (a job whose targets no longer expand,
    say after the allowlist changed, is left out)."""
    try:
        return host in expand(job.runs_on)
    except TargetError:
        return False


def status_on(done: Done | None, host: str, expand: Callable[[str], list[str]]) -> str | None:
    """The host's status in a finished job, from its output groups; None while the job runs."""
    if done is None:
        return None
    for group in done.groups:
        try:
            if host in expand(group.hosts):
                return group.status
        except TargetError:
            continue
    return None
