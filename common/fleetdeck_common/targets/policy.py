"""Where exec may go at all: the FLEETDECK_ALLOWED_TARGETS allowlist and the per-job host cap. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .hosts import IPNetwork, normalise_hostname, parse_address


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
        address = parse_address(host)
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
