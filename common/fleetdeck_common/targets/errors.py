"""Why a target expression cannot run: the error that names the wrong term."""

from __future__ import annotations


class TargetError(ValueError):
    """A target expression that cannot run; `term` is the part that is wrong."""

    def __init__(self, term: str, reason: str) -> None:
        self.term = term
        self.reason = reason
        super().__init__(f"{term!r}: {reason}" if term else reason)


class TooMany(TargetError):
    """A term names more addresses than may be looked at."""


def too_many(term: str, what: str, count: int, limit: int) -> TargetError:
    """The error for a range, network or node set that has more addresses than `limit`."""
    return TooMany(term, f"{what} has {count} addresses, too many to expand (at most {limit})")
