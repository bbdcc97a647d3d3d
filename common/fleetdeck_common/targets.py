"""The exec target grammar: an expression such as `10.0.0.1-100,!10.0.0.7 web[01-20] @role=db`
to an ordered host list.

Pure: no I/O and no name resolution; label selectors are answered by a function the caller passes
(the gateway knows which hosts are online with which labels). Errors name the offending term and
say why.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SEPARATORS = re.compile(r"[\s,]")
_SEPARATOR_RUNS = re.compile(r"[\s,]+")
_NODESET = re.compile(r"\[([0-9A-Za-z][0-9A-Za-z,-]*)\]")  # web[01-20], 10.0.0.[1-40,42], db[1-3]-[a,b]
_LABEL_KEY = r"[A-Za-z0-9_.-]{1,63}"
_LABEL_VALUE = r"[A-Za-z0-9_.:/-]{1,253}"
_SELECTOR = re.compile(rf"^@({_LABEL_KEY})=({_LABEL_VALUE})$")
_LABEL_PAIR = re.compile(rf"^({_LABEL_KEY})=({_LABEL_VALUE})$")

# Answers a label selector: the addresses of the online hosts whose label `key` is `value`.
LabelLookup = Callable[[str, str], Sequence[str]]


class TargetError(ValueError):
    """A target expression that cannot run; `term` is the part that is wrong."""

    def __init__(self, term: str, reason: str) -> None:
        self.term = term
        self.reason = reason
        super().__init__(f"{term!r}: {reason}" if term else reason)


def parse_labels(text: str) -> dict[str, str]:
    """`role=web,dc=eu` -> {"role": "web", "dc": "eu"}; ValueError naming a malformed pair."""
    labels: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        match = _LABEL_PAIR.match(pair)
        if match is None:
            raise ValueError(
                f"{pair!r} is not key=value (keys: letters, digits, _.-; values may also hold : and /)"
            )
        labels[match.group(1)] = match.group(2)
    return labels


def _parse_address(text: str) -> IPAddress | None:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if ":" not in candidate:
        # IPv4 or nothing, read here as strictly as `ipaddress` does (four decimal octets, no
        # leading zeros) but without its exceptions: a host name costs a split, not two parses.
        value = 0
        octets = candidate.split(".")
        if len(octets) != 4:
            return None
        for octet in octets:
            if not (octet.isascii() and octet.isdigit() and len(octet) <= 3) or (
                octet[0] == "0" and octet != "0"
            ):
                return None
            number = int(octet)
            if number > 255:
                return None
            value = value * 256 + number
        return ipaddress.IPv4Address(value)
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _looks_numeric(text: str) -> bool:
    """A dotted name whose last label is all digits is meant as an IPv4 address."""
    return text.rsplit(".", 1)[-1].isdigit()


def normalise_hostname(text: str) -> str | None:
    """Return the lower-cased host name if it is a valid RFC 1123 name, else None."""
    name = text.lower().rstrip(".")
    if not name or len(name) > 253 or _looks_numeric(name):
        return None
    if all(_LABEL.match(label) for label in name.split(".")):
        return name
    return None


@dataclass(frozen=True)
class TargetPolicy:
    """Where exec may go (FLEETDECK_ALLOWED_TARGETS) and how many hosts one job may have."""

    networks: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"),)
    names: tuple[str, ...] = ()
    max_hosts: int = 1024

    @classmethod
    def from_entries(cls, entries: Iterable[str], max_hosts: int = 1024) -> TargetPolicy:
        networks: list[IPNetwork] = []
        names: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            networks_or_name = parse_allow_entry(entry)
            if isinstance(networks_or_name, str):
                names.append(networks_or_name)
            else:
                networks.append(networks_or_name)
        return cls(tuple(networks), tuple(names), max_hosts)

    def allows(self, host: str) -> bool:
        address = _parse_address(host)
        if address is not None:
            return any(address in net for net in self.networks)
        for pattern in self.names:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def describe(self) -> str:
        return ",".join([str(n) for n in self.networks] + list(self.names)) or "(nothing)"


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """One FLEETDECK_ALLOWED_TARGETS entry: a CIDR, an address, a host name or `*.domain`."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    if entry.startswith("*.") and normalise_hostname(entry[2:]):
        return "*." + entry[2:].lower()
    name = normalise_hostname(entry)
    if name is None:
        raise ValueError(f"{entry!r} is not a CIDR, an address or a host name")
    return name


class _TooMany(TargetError):
    """A term names more addresses than may be looked at."""


def _too_many(term: str, what: str, count: int, limit: int) -> TargetError:
    return _TooMany(term, f"{what} has {count} addresses, too many to expand (at most {limit})")


_MAX_NODESET_DIGITS = 9  # a number in brackets; longer ones name more hosts than any cap anyway


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def _range(term: str, start: IPAddress, end: IPAddress, limit: int) -> Iterator[str]:
    if start.version != end.version:
        raise TargetError(term, "range mixes IPv4 and IPv6")
    if int(end) < int(start):
        raise TargetError(term, f"range ends ({end}) before it starts ({start})")
    count = int(end) - int(start) + 1
    if count > limit:
        raise _too_many(term, "range", count, limit)
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
        raise _too_many(term, "network", count, limit)
    return (str(h) for h in hosts)


def _nodeset_items(term: str, inner: str, limit: int) -> list[str]:
    """`01-03,7,b` -> ['01', '02', '03', '7', 'b']: numbers zero-padded to the width they are
    written in; words as they are. More than `limit` items are refused before they are listed."""
    items: list[str] = []
    for part in inner.split(","):
        low, sep, high = part.partition("-")
        if not sep and low.isalnum() and low.isascii():
            items.append(low)
        else:
            if not _is_number(low) or not _is_number(high):
                raise TargetError(term, f"[{inner}]: {part!r} is not a number, a range of numbers or a word")
            if max(len(low), len(high)) > _MAX_NODESET_DIGITS:
                raise TargetError(
                    term, f"[{inner}]: numbers in brackets have at most {_MAX_NODESET_DIGITS} digits"
                )
            start, end = int(low), int(high)
            if end < start:
                raise TargetError(term, f"[{inner}]: range {part} ends before it starts")
            if len(items) + end - start + 1 > limit:
                raise _too_many(term, "node set", len(items) + end - start + 1, limit)
            items.extend(f"{n:0{len(low)}d}" for n in range(start, end + 1))
        if len(items) > limit:
            raise _too_many(term, "node set", len(items), limit)
    return items


def expand_nodeset(term: str, limit: int) -> list[str]:
    """`web[01-03]-[a]`-free node sets: `rack[1-2]-n[01-02]` -> rack1-n01, rack1-n02, rack2-n01, ..."""
    names = [""]
    rest = term
    while match := _NODESET.search(rest):
        items = _nodeset_items(term, match.group(1), limit)
        if len(names) * len(items) > limit:
            raise _too_many(term, "node set", len(names) * len(items), limit)
        prefix = rest[: match.start()]
        names = [f"{name}{prefix}{item}" for name in names for item in items]
        rest = rest[match.end() :]
    if "[" in rest or "]" in rest:
        raise TargetError(
            term,
            "brackets hold numbers, ranges and words: web[01-20], 10.0.0.[1-40,42], db[1-3]-[a,b]",
        )
    return [name + rest for name in names]


def _parse_range(term: str) -> tuple[IPAddress, IPAddress] | None:
    """`10.0.0.1-100` or `10.0.0.250-10.0.1.10` as (start, end); None if `term` is no range."""
    if "-" not in term:
        return None
    left, right = term.split("-", 1)
    start = _parse_address(left)
    if start is None:
        return None
    if _is_number(right):
        if start.version != 4:
            raise TargetError(term, "a last-octet range needs an IPv4 start address")
        digits = right.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:
            shown = digits if len(digits) <= 12 else digits[:12] + "…"
            raise TargetError(term, f"last octet {shown} is more than 255")
        last = int(digits)
        return start, ipaddress.IPv4Address(int(start) - int(start) % 256 + last)
    end = _parse_address(right)
    if end is None:
        raise TargetError(term, f"range end {right!r} is not an address or a last octet")
    return start, end


def _span(term: str) -> tuple[int, int, int] | None:
    """An address, range or CIDR term as (IP version, first, last) without listing it; else None."""
    if "/" in term and "[" not in term:
        try:
            net = ipaddress.ip_network(term, strict=False)
        except ValueError as exc:
            raise TargetError(term, f"not a valid CIDR network ({exc})") from None
        return net.version, int(net.network_address), int(net.broadcast_address)
    address = _parse_address(term)
    if address is not None:
        return address.version, int(address), int(address)
    bounds = _parse_range(term)
    if bounds is None:
        return None
    start, end = bounds
    if start.version != end.version:
        raise TargetError(term, "range mixes IPv4 and IPv6")
    return start.version, int(start), int(end)


def _members_hosts(term: str, members: Sequence[str], limit: int, excluding: bool) -> Iterator[str]:
    """The hosts of a node set's members (or a label selector's addresses), as they are needed;
    the members share the term's limit, so `127.[0-255].0.0/18` is refused after one network's
    worth, not listed 256 times."""
    count = 0
    for member in members:
        try:
            hosts = expand_term(member, limit - count, excluding)
        except _TooMany:
            raise _TooMany(term, f"names more than {limit} addresses, too many to expand") from None
        except TargetError as exc:
            raise TargetError(term, f"{member}: {exc.reason}") from None
        for host in hosts:
            count += 1
            if count > limit:
                raise _TooMany(term, f"names more than {limit} addresses, too many to expand")
            yield host


def expand_term(
    term: str, limit: int, excluding: bool = False, labels: LabelLookup | None = None
) -> Iterator[str]:
    """Hosts of one term (without its `!`), or TargetError saying why the term is wrong.

    An excluded network removes every address in it, network and broadcast included.
    """
    if term.startswith("@"):
        selector = _SELECTOR.match(term)
        if selector is None:
            raise TargetError(term, "a label selector is @key=value, as in @role=web")
        if labels is None:
            raise TargetError(term, "label selectors are not available here")
        found = list(labels(selector.group(1), selector.group(2)))
        if not found and not excluding:
            raise TargetError(term, f"no online host has the label {selector.group(1)}={selector.group(2)}")
        return _members_hosts(term, found, limit, excluding=False)
    if ("[" in term or "]" in term) and _parse_address(term) is None:
        return _members_hosts(term, expand_nodeset(term, limit), limit, excluding)
    if "/" in term:
        try:
            net = ipaddress.ip_network(term, strict=False)
        except ValueError as exc:
            raise TargetError(term, f"not a valid CIDR network ({exc})") from None
        return _network_hosts(term, net, limit, every_address=excluding)
    address = _parse_address(term)
    if address is not None:
        return iter([str(address)])
    bounds = _parse_range(term)
    if bounds is not None:
        return _range(term, bounds[0], bounds[1], limit)
    name = normalise_hostname(term)
    if name is None:
        if _looks_numeric(term.lower().rstrip(".")):
            raise TargetError(term, "not a valid IP address")
        raise TargetError(term, "not an address, range, CIDR or valid host name")
    return iter([name])


_DIGITS = re.compile(r"(\d+)")


def _sort_key(host: str) -> tuple[int, int, tuple[tuple[str, int], ...]]:
    """Addresses numerically (IPv4 first), then names naturally: web2 before web10."""
    address = _parse_address(host)
    if address is None:
        parts = _DIGITS.split(host)
        natural = tuple(
            (text, int(number or 0)) for text, number in zip(parts[::2], [*parts[1::2], ""], strict=True)
        )
        return (2, 0, natural)
    return (address.version // 6, int(address), ())


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
        address = _parse_address(host)
        if address is None or not self.spans:
            return False
        found = self._lookup().get(address.version)
        if found is None:
            return False
        starts, ends = found
        value = int(address)
        at = bisect.bisect_right(starts, value) - 1
        return at >= 0 and value <= ends[at]


def expand_targets(expression: str, policy: TargetPolicy, labels: LabelLookup | None = None) -> list[str]:
    """Expand a target expression into an ordered, de-duplicated host list allowed by `policy`.

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
            span = _span(term)
            if span is not None:
                excluded.add(span)
                continue
            if budget <= 0:
                raise over_budget
            try:
                for host in expand_term(term, budget, excluding=True, labels=labels):
                    excluded.names.add(host)
                    budget -= 1
            except _TooMany:
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
            for host in expand_term(raw, budget, labels=labels):
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
        except _TooMany:
            if budget < full_budget:
                raise over_budget from None
            raise
    if not kept:
        raise TargetError(shown, "no hosts left after exclusions")
    return sorted(kept, key=_sort_key)


def sort_hosts(hosts: Sequence[str]) -> list[str]:
    return sorted(hosts, key=_sort_key)
