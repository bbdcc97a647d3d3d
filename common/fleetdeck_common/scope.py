"""Token scopes: the hosts one token may run commands on, written as a target expression.

A token line's `targets=10.0.0.0/24,web[01-20]` limits that token to those hosts, on top of the
global allowlist. A host is inside a scope when the expression, given as exec targets, would
include it (so `10.0.0.0/24` covers 10.0.0.1-254, and `!term` takes hosts out). `*.domain` is
accepted as in the allowlist. Label selectors are refused: agents choose their own labels, so a
label cannot bound what a token may do.

Pure, and cheap whatever the scope: networks and ranges are kept as address spans and never
listed. The gateway checks a job's hosts before queueing it and the worker again before it
connects (the job carries the scope).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from .targets import (
    IPAddress,
    TargetError,
    expand_nodeset,
    expand_term,
    parse_allow_entry,
    split_terms,
)

MAX_SCOPE_NODES = 65536  # names one node set in a scope may stand for
MAX_SCOPE_CHARS = 4096

Span = tuple[int, int, int]  # IP version, first and last address as integers


def _address(text: str) -> IPAddress | None:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


@dataclass
class _Hosts:
    """What some terms of a scope name: address spans, exact names and `*.domain` suffixes."""

    spans: list[Span] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    suffixes: list[str] = field(default_factory=list)

    def __contains__(self, host: str) -> bool:
        address = _address(host)
        if address is not None:
            value = int(address)
            return any(v == address.version and lo <= value <= hi for v, lo, hi in self.spans)
        name = host.lower().rstrip(".")
        return name in self.names or any(name.endswith(suffix) for suffix in self.suffixes)

    def add(self, term: str, excluding: bool) -> None:
        """Add one term (without its `!`), or raise TargetError naming it and saying why."""
        if term.startswith("@"):
            raise TargetError(term, "a token's targets cannot use labels (agents choose their own)")
        if term.startswith("*."):
            try:
                pattern = parse_allow_entry(term)
            except ValueError:
                raise TargetError(term, "*. must be followed by a valid domain name") from None
            self.suffixes.append(str(pattern)[1:])
            return
        if ("[" in term or "]" in term) and _address(term) is None:
            for member in expand_nodeset(term, MAX_SCOPE_NODES):
                try:
                    self.add(member, excluding)
                except TargetError as exc:
                    raise TargetError(term, f"{member}: {exc.reason}") from None
            return
        span = _span(term, excluding)
        if span is not None:
            self.spans.append(span)
            return
        self.names.update(expand_term(term, 1, excluding))  # a host name, or the grammar's own error


def _span(term: str, excluding: bool) -> Span | None:
    """An address, range or network as a span (as the target grammar reads it); None for a name."""
    if "/" in term:
        try:
            net = ipaddress.ip_network(term, strict=False)
        except ValueError as exc:
            raise TargetError(term, f"not a valid CIDR network ({exc})") from None
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.version == 4 and net.prefixlen < 31 and not excluding:
            first, last = first + 1, last - 1  # as targets, a network leaves these two out
        return net.version, first, last
    address = _address(term)
    if address is not None:
        return address.version, int(address), int(address)
    left, dash, right = term.partition("-")
    start = _address(left) if dash else None
    if start is None:
        return None
    end: IPAddress | None
    if right.isascii() and right.isdigit():  # not "²": isdigit() takes digits int() refuses
        if start.version != 4:
            raise TargetError(term, "a last-octet range needs an IPv4 start address")
        if int(right) > 255:
            raise TargetError(term, f"last octet {int(right)} is more than 255")
        end = ipaddress.IPv4Address(int(start) - int(start) % 256 + int(right))
    else:
        end = _address(right)
        if end is None:
            raise TargetError(term, f"range end {right!r} is not an address or a last octet")
    if start.version != end.version:
        raise TargetError(term, "range mixes IPv4 and IPv6")
    if int(end) < int(start):
        raise TargetError(term, f"range ends ({end}) before it starts ({start})")
    return start.version, int(start), int(end)


@dataclass(frozen=True)
class TokenScope:
    """Where one token may exec; `expression` is the normalised form written to the token file."""

    expression: str
    _included: _Hosts
    _excluded: _Hosts

    def allows(self, host: str) -> bool:
        return host in self._included and host not in self._excluded

    def first_outside(self, hosts: Iterable[str]) -> str | None:
        """The first of `hosts` the token may not reach, or None if it may reach them all."""
        return next((host for host in hosts if not self.allows(host)), None)

    def check(self, hosts: Iterable[str]) -> None:
        """TargetError naming the first host outside the scope, if any."""
        outside = self.first_outside(hosts)
        if outside is not None:
            raise TargetError(outside, f"{outside} is outside this token's targets ({self.expression})")


@lru_cache(maxsize=256)
def parse_scope(expression: str) -> TokenScope:
    """A scope from a target expression; TargetError naming the bad term and saying why."""
    if len(expression) > MAX_SCOPE_CHARS:
        raise TargetError("", f"a token's targets may be at most {MAX_SCOPE_CHARS} characters")
    terms = split_terms(expression)
    if not [t for t in terms if not t.startswith("!")]:
        raise TargetError(expression.strip()[:80], "a token's targets must name at least one host")
    included, excluded = _Hosts(), _Hosts()
    for raw in terms:
        negate = raw.startswith("!")
        term = raw[1:] if negate else raw
        if not term:
            raise TargetError(raw, "'!' must be followed by a host, range or network")
        (excluded if negate else included).add(term, negate)
    return TokenScope(",".join(terms), included, excluded)
