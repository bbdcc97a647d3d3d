"""A whole target expression, such as `10.0.0.1-100,!10.0.0.7 web[01-20] @role=db`, to an ordered,
de-duplicated host list within the allowlist and the host cap. Pure."""

from __future__ import annotations

import bisect

from .errors import TargetError, TooMany
from .hosts import AddressLookup, host_sort_key, parse_address
from .labels import LabelLookup
from .policy import TargetPolicy
from .terms import address_span, expand_term, split_terms


class _Exclusions:
    """What `!` terms take away: address spans are kept as spans, never listed, and looked up by
    bisection (a thousand `!` terms cost no more per host than one)."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int, int]] = []
        self.names: set[str] = set()
        self._merged: dict[int, tuple[list[int], list[int]]] | None = None

    def add(self, span: tuple[int, int, int]) -> None:
        self.spans.append(span)
        self._merged = None

    def _lookup(self) -> dict[int, tuple[list[int], list[int]]]:
        """Per IP version, the spans merged and sorted: their starts and their ends."""
        if self._merged is None:
            merged: dict[int, tuple[list[int], list[int]]] = {}
            for version, low, high in sorted(self.spans):
                starts, ends = merged.setdefault(version, ([], []))
                if ends and low <= ends[-1] + 1:
                    ends[-1] = max(ends[-1], high)
                else:
                    starts.append(low)
                    ends.append(high)
            self._merged = merged
        return self._merged

    def __contains__(self, host: str) -> bool:
        if host in self.names:
            return True
        address = parse_address(host)
        if address is None or not self.spans:
            return False
        found = self._lookup().get(address.version)
        if found is None:
            return False
        starts, ends = found
        value = int(address)
        at = bisect.bisect_right(starts, value) - 1
        return at >= 0 and value <= ends[at]


def expand_targets(
    expression: str,
    policy: TargetPolicy,
    labels: LabelLookup | None = None,
    addresses: AddressLookup | None = None,
) -> list[str]:
    """Expand a target expression into an ordered, de-duplicated host list allowed by `policy`;
    with `addresses`, a known host's name stands for its SSH address (the allowlist checks that).

    Bounded whatever the terms: exclusions of addresses are never listed, and at most
    16 x max_hosts addresses are looked at in all; the allowlist and the cap are checked while
    expanding, so a hostile expression is refused early and cheaply.
    """
    terms = split_terms(expression)
    if not terms:
        raise TargetError("", "the target expression is empty")
    budget = full_budget = max(policy.max_hosts * 16, 256)
    shown = expression.strip()[:80]
    over_budget = TargetError(shown, f"names too many addresses; at most {full_budget} are looked at")
    excluded = _Exclusions()
    for raw in terms:
        if raw.startswith("!"):
            term = raw[1:]
            if not term:
                raise TargetError(raw, "'!' must be followed by a host, range or network")
            span = address_span(term)
            if span is not None:
                excluded.add(span)
                continue
            if budget <= 0:
                raise over_budget
            try:
                for host in expand_term(term, budget, excluding=True, labels=labels, addresses=addresses):
                    excluded.names.add(host)
                    budget -= 1
            except TooMany:
                if budget < full_budget:
                    raise over_budget from None  # too many with what the terms before it used
                raise
    kept: dict[str, str] = {}
    for raw in terms:
        if raw.startswith("!"):
            continue
        if budget <= 0:
            raise over_budget
        try:
            for host in expand_term(raw, budget, labels=labels, addresses=addresses):
                budget -= 1
                if host in kept or host in excluded:
                    continue
                if not policy.allows(host):
                    raise TargetError(raw, f"{host} is outside the allowed targets ({policy.describe()})")
                kept[host] = raw
                if len(kept) > policy.max_hosts:
                    raise TargetError(
                        shown, f"expands to more than {policy.max_hosts} hosts; at most that many are allowed"
                    )
        except TooMany:
            if budget < full_budget:
                raise over_budget from None
            raise
    if not kept:
        raise TargetError(shown, "no hosts left after exclusions")
    return sorted(kept, key=host_sort_key)
