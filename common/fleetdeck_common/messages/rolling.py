"""Rolling jobs (v1.2), pure: `batch` and `max_failures` (a number or `N%`), checked, and the
waves and failure limit they make of a job's hosts."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_AMOUNT = re.compile(r"^\s*(\d{1,9})\s*(%?)\s*$")


def _amount(field: str, value: object, least: int) -> str | None:
    """`value` as "N" or "N%", refused with a sentence naming `field` unless a whole number of at
    least `least` or a percentage from `least` to 100."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{field} must be a number of hosts or a percentage like 25%")
    match = _AMOUNT.match(str(value))
    if match is None:
        raise ValueError(f"{field} {str(value)[:40]!r} is not a number of hosts or a percentage like 25%")
    number, percent = int(match.group(1)), match.group(2)
    if number < least:
        what = "at least one host" if least else "zero or more hosts"
        raise ValueError(f"{field} {number}{percent} is too small: it must be {what}")
    if percent and number > 100:
        raise ValueError(f"{field} {number}% is more than 100%")
    return f"{number}{percent}"


def _batch(value: object) -> str | None:
    return _amount("batch", value, 1)


def _max_failures(value: object) -> str | None:
    return _amount("max_failures", value, 0)


# Hosts per wave: "N" or "N%" of the job's hosts (at least one a wave).
Batch = Annotated[str | None, BeforeValidator(_batch)]
# How many hosts may fail before no more start: "N" or "N%" of the job's hosts (rounded down).
MaxFailures = Annotated[str | None, BeforeValidator(_max_failures)]


def _of(amount: str, total: int, round_up: bool) -> int:
    if amount.endswith("%"):
        share = total * int(amount[:-1]) / 100
        return max(1, math.ceil(share)) if round_up else math.floor(share)
    return int(amount)


def waves(hosts: list[str], batch: str | None) -> list[list[str]]:
    """The job's hosts in waves of `batch` (a percentage rounded up), in order; one wave without."""
    if not hosts:
        return []
    size = len(hosts) if batch is None else _of(batch, len(hosts), round_up=True)
    return [hosts[i : i + size] for i in range(0, len(hosts), size)]


def failure_limit(max_failures: str | None, total: int) -> int | None:
    """How many hosts may fail before no more start (a percentage rounded down); None: no limit."""
    return None if max_failures is None else _of(max_failures, total, round_up=False)


def over_limit(failed: int, limit: int | None) -> bool:
    """Whether `failed` hosts are more than `limit` allows: no host starts any more."""
    return limit is not None and failed > limit


def halt_reason(failed: int, max_failures: str | None, limit: int | None) -> str:
    """Why the hosts left of a rolling job were not started, in one sentence."""
    share = f" ({limit} hosts)" if max_failures is not None and max_failures.endswith("%") else ""
    return (
        f"the hosts left were not started: {failed} hosts had not succeeded, more than "
        f"max_failures {max_failures}{share} allows"
    )
