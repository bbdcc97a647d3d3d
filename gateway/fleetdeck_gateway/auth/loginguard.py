"""Failed logins, throttled per address: a token bucket per address, in bounded memory.

Each address may fail `failures` logins at once and then one every `60 / failures` seconds (10 a
minute by default, `FLEETDECK_LOGIN_FAILURES`). Past that, `POST /api/login` from the address is
answered 429 with Retry-After before the token is even looked at, right or wrong: a guesser
cannot tell a hit from a miss while throttled. A success does not refill the bucket (a viewer's
token must not buy more guesses at an operator's). IPv6 addresses count by their /64, which one
machine usually has to itself. Buckets are per gateway process.

Memory: at most `max_addresses` buckets, the least recently used forgotten first (a forgotten
address starts afresh, as a new one would). Separately, failed logins get their own audit entry
only `audited` a minute across all addresses, so a spray from many addresses cannot push the
audit trail's older entries out; the entry after a gap says how many were left out, and every
failure is still logged.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

PERIOD_SECONDS = 60.0
MAX_ADDRESSES = 10_000
AUDITED_PER_MINUTE = 60


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class _Rate:
    """`capacity` tokens, refilled at `capacity` per PERIOD_SECONDS."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self.capacity = float(capacity)
        self.per_second = capacity / PERIOD_SECONDS
        self._clock = clock

    def new(self) -> _Bucket:
        return _Bucket(self.capacity, self._clock())

    def refill(self, bucket: _Bucket) -> None:
        now = self._clock()
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.per_second)
        bucket.stamp = now

    def wait(self, bucket: _Bucket) -> float:
        """Seconds until the bucket holds a token (0: it holds one now)."""
        self.refill(bucket)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.per_second


def throttle_key(address: str) -> str:
    """What an address counts as: itself, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class LoginThrottle:
    def __init__(
        self,
        failures: int = 10,
        max_addresses: int = MAX_ADDRESSES,
        audited: int = AUDITED_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = _Rate(failures, clock)
        self._max = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._audit_rate = _Rate(audited, clock)
        self._audit = self._audit_rate.new()
        self._unaudited = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, address: str) -> int | None:
        """Whole seconds before `address` may try to log in again, or None if it may now."""
        bucket = self._buckets.get(throttle_key(address))
        if bucket is None:
            return None
        wait = self._rate.wait(bucket)
        return None if wait == 0 else max(1, math.ceil(wait))

    def failed(self, address: str) -> None:
        """Count a failed login from `address`."""
        key = throttle_key(address)
        bucket = self._buckets.pop(key, None) or self._rate.new()
        self._rate.refill(bucket)
        bucket.tokens = max(0.0, bucket.tokens - 1)
        self._buckets[key] = bucket  # most recently used last
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def audit_failure(self) -> int | None:
        """Whether this failed login gets its own audit entry: None if not (it is counted), else
        how many were left out since the last one that did."""
        if self._audit_rate.wait(self._audit) > 0:
            self._unaudited += 1
            return None
        self._audit.tokens -= 1
        left_out, self._unaudited = self._unaudited, 0
        return left_out
