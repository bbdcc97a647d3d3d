"""One host as written in a target: an IP address or an RFC 1123 name, and the order hosts are
listed in. Pure."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Answers a host name in targets: the address SSH reaches the known host of that name at (from
# its heartbeat), or None to keep the name as it is.
AddressLookup = Callable[[str], str | None]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DIGITS = re.compile(r"(\d+)")


def parse_address(text: str) -> IPAddress | None:
    """`text` as an IP address (IPv6 may be in brackets), or None if it is none."""
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


def looks_numeric(text: str) -> bool:
    """A dotted name whose last label is all digits is meant as an IPv4 address."""
    return text.rsplit(".", 1)[-1].isdigit()


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def normalise_hostname(text: str) -> str | None:
    """Return the lower-cased host name if it is a valid RFC 1123 name, else None."""
    name = text.lower().rstrip(".")
    if not name or len(name) > 253 or looks_numeric(name):
        return None
    if all(_LABEL.match(label) for label in name.split(".")):
        return name
    return None


def host_sort_key(host: str) -> tuple[int, int, tuple[tuple[str, int], ...]]:
    """Addresses numerically (IPv4 first), then names naturally: web2 before web10."""
    address = parse_address(host)
    if address is None:
        parts = _DIGITS.split(host)
        natural = tuple(
            (text, int(number or 0)) for text, number in zip(parts[::2], [*parts[1::2], ""], strict=True)
        )
        return (2, 0, natural)
    return (address.version // 6, int(address), ())


def sort_hosts(hosts: Sequence[str]) -> list[str]:
    """`hosts` in the order fleetdeck lists them (see `host_sort_key`)."""
    return sorted(hosts, key=host_sort_key)


class KnownAddresses:
    """An `AddressLookup` over `address_of` (a known host's address, or None) that remembers the
    names it turned into other addresses (a job then carries the addresses it chose)."""

    def __init__(self, address_of: Callable[[str], str | None]) -> None:
        self._address_of = address_of
        self.names: dict[str, str] = {}  # address -> the name it was chosen by

    @property
    def used(self) -> bool:
        return bool(self.names)

    def __call__(self, name: str) -> str | None:
        address = self._address_of(name)
        if address is None or address == name:
            return None
        self.names.setdefault(address, name)
        return address
