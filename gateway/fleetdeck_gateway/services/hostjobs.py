"""Which recent jobs ran on one host, and what each came to there: the marks on a host's chart
(`GET /api/jobs?host=NAME`, with `since`/`until` those of the chart's range). A job names hosts by
the address SSH reaches them at, the chart by the agent's name, so a host is matched by both.
Pure: expansion, address, `done` and the clock are passed in."""

from __future__ import annotations

from collections.abc import Callable, Set

from fleetdeck_common.audit import parse_since
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


def window_param(since: str | None, until: str | None, now: float) -> tuple[float, float] | None:
    """`since`..`until` as unix seconds (`until` defaults to now), None when `since` is absent;
    ValueError with a sentence naming the parameter."""
    if since is None:
        if until is not None:
            raise ValueError("until needs since: give both, or neither for the last 100 jobs")
        return None
    start = parse_since(since, now)
    try:
        end = now if until is None else parse_since(until, now)
    except ValueError as exc:
        raise ValueError(str(exc).replace("since must be", "until must be", 1)) from None
    if end < start:
        raise ValueError("until must not be earlier than since")
    return start, end


def known_as(name: str, address: str | None) -> frozenset[str]:
    """What a job's targets may call a host: its name and, when its heartbeat gave one, its address."""
    return frozenset({name, address} if address else {name})


def ran_on(job: Job, host: Set[str], expand: Callable[[str], list[str]]) -> bool:
    """Whether the host (any of its `known_as`) is among the hosts the job was for (a job whose
    targets no longer expand, say after the allowlist changed, is left out)."""
    try:
        return not host.isdisjoint(expand(job.runs_on))
    except TargetError:
        return False


def status_on(done: Done | None, host: Set[str], expand: Callable[[str], list[str]]) -> str | None:
    """The host's status in a finished job, from its output groups; None while the job runs."""
    if done is None:
        return None
    for group in done.groups:
        try:
            if not host.isdisjoint(expand(group.hosts)):
                return group.status
        except TargetError:
            continue
    return None
