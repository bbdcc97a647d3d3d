"""One term of a target expression (an address, range, CIDR, node set, name or `@key=value`) to
its hosts, listed lazily and within a limit. Pure."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence

from .errors import TargetError, TooMany, too_many
from .hosts import (
    AddressLookup,
    IPAddress,
    IPNetwork,
    is_number,
    looks_numeric,
    normalise_hostname,
    parse_address,
)
from .labels import ALERT_KEY, SELECTOR, LabelLookup
from .nodesets import expand_nodeset

_SEPARATORS = re.compile(r"[\s,]")
_SEPARATOR_RUNS = re.compile(r"[\s,]+")


def split_terms(expression: str) -> list[str]:
    """Terms are separated by commas or spaces, except inside a node set's brackets."""
    if "[" not in expression and "]" not in expression:
        return [term for term in _SEPARATOR_RUNS.split(expression) if term]  # the same, at C speed
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in expression:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        if depth == 0 and _SEPARATORS.match(char):
            if current:
                terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        terms.append("".join(current))
    return terms


def _range(term: str, start: IPAddress, end: IPAddress, limit: int) -> Iterator[str]:
    if start.version != end.version:
        raise TargetError(term, "range mixes IPv4 and IPv6")
    if int(end) < int(start):
        raise TargetError(term, f"range ends ({end}) before it starts ({start})")
    count = int(end) - int(start) + 1
    if count > limit:
        raise too_many(term, "range", count, limit)
    address_type = type(start)
    return (str(address_type(int(start) + i)) for i in range(count))


def _network_hosts(term: str, net: IPNetwork, limit: int, every_address: bool) -> Iterator[str]:
    if net.version == 4 and net.prefixlen < 31 and not every_address:
        count = net.num_addresses - 2
        hosts: Iterable[object] = net.hosts()
    else:
        count = net.num_addresses
        hosts = iter(net)
    if count > limit:
        raise too_many(term, "network", count, limit)
    return (str(h) for h in hosts)


def _parse_range(term: str) -> tuple[IPAddress, IPAddress] | None:
    """`10.0.0.1-100` or `10.0.0.250-10.0.1.10` as (start, end); None if `term` is no range."""
    if "-" not in term:
        return None
    left, right = term.split("-", 1)
    start = parse_address(left)
    if start is None:
        return None
    if is_number(right):
        if start.version != 4:
            raise TargetError(term, "a last-octet range needs an IPv4 start address")
        digits = right.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:
            shown = digits if len(digits) <= 12 else digits[:12] + "…"
            raise TargetError(term, f"last octet {shown} is more than 255")
        last = int(digits)
        return start, ipaddress.IPv4Address(int(start) - int(start) % 256 + last)
    end = parse_address(right)
    if end is None:
        raise TargetError(term, f"range end {right!r} is not an address or a last octet")
    return start, end


def address_span(term: str) -> tuple[int, int, int] | None:
    """An address, range or CIDR term as (IP version, first, last) without listing it; else None."""
    if "/" in term and "[" not in term:
        try:
            net = ipaddress.ip_network(term, strict=False)
        except ValueError as exc:
            raise TargetError(term, f"not a valid CIDR network ({exc})") from None
        return net.version, int(net.network_address), int(net.broadcast_address)
    address = parse_address(term)
    if address is not None:
        return address.version, int(address), int(address)
    bounds = _parse_range(term)
    if bounds is None:
        return None
    start, end = bounds
    if start.version != end.version:
        raise TargetError(term, "range mixes IPv4 and IPv6")
    return start.version, int(start), int(end)


def _members_hosts(
    term: str, members: Sequence[str], limit: int, excluding: bool, addresses: AddressLookup | None = None
) -> Iterator[str]:
    """The hosts of a node set's members (or a label selector's addresses), as they are needed;
    the members share the term's limit, so `127.[0-255].0.0/18` is refused after one network's
    worth, not listed 256 times."""
    count = 0
    for member in members:
        try:
            hosts = expand_term(member, limit - count, excluding, addresses=addresses)
        except TooMany:
            raise TooMany(term, f"names more than {limit} addresses, too many to expand") from None
        except TargetError as exc:
            raise TargetError(term, f"{member}: {exc.reason}") from None
        for host in hosts:
            count += 1
            if count > limit:
                raise TooMany(term, f"names more than {limit} addresses, too many to expand")
            yield host


def expand_term(
    term: str,
    limit: int,
    excluding: bool = False,
    labels: LabelLookup | None = None,
    addresses: AddressLookup | None = None,
) -> Iterator[str]:
    """Hosts of one term (without its `!`), or TargetError saying why the term is wrong.

    An excluded network removes every address in it, network and broadcast included. With
    `addresses`, a known host's name stands for the address SSH reaches it at.
    """
    if term.startswith("@"):
        selector = SELECTOR.match(term)
        if selector is None:
            raise TargetError(term, "a label selector is @key=value, as in @role=web")
        if labels is None:
            raise TargetError(term, "label selectors are not available here")
        key, value = selector.groups()
        found = list(labels(key, value))
        if not found and not excluding:
            if key == ALERT_KEY:
                raise TargetError(term, f"alert rule {value} fires on no host now")
            raise TargetError(term, f"no online host has the label {key}={value}")
        return _members_hosts(term, found, limit, excluding=False)
    if ("[" in term or "]" in term) and parse_address(term) is None:
        return _members_hosts(term, expand_nodeset(term, limit), limit, excluding, addresses)
    if "/" in term:
        try:
            net = ipaddress.ip_network(term, strict=False)
        except ValueError as exc:
            raise TargetError(term, f"not a valid CIDR network ({exc})") from None
        return _network_hosts(term, net, limit, every_address=excluding)
    address = parse_address(term)
    if address is not None:
        return iter([str(address)])
    bounds = _parse_range(term)
    if bounds is not None:
        return _range(term, bounds[0], bounds[1], limit)
    name = normalise_hostname(term)
    if name is None:
        if looks_numeric(term.lower().rstrip(".")):
            raise TargetError(term, "not a valid IP address")
        raise TargetError(term, "not an address, range, CIDR or valid host name")
    known = addresses(name) if addresses is not None else None
    return iter([known or name])
