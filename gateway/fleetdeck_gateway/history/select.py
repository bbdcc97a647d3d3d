"""The hosts a target expression selects for reading history: by name, address or label, offline
hosts included, and hosts named outright even if no gateway knows them now (a retired host's
history outlives its presence); the exec allowlist and host cap do not apply. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from fleetdeck_common.targets import TargetPolicy, expand_targets, split_terms
from fleetdeck_common.targets.hosts import parse_address

MAX_SELECTED = 10_000


class KnownHost(Protocol):
    """What selecting needs of a known host (a `HostInfo`, or the host table's lighter entry)."""

    @property
    def host(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def address(self) -> str: ...


class _Anything(TargetPolicy):
    """Every address and name: reading history sends nothing to a host."""

    def allows(self, host: str) -> bool:
        return True


def select_hosts(expression: str, known: Sequence[KnownHost]) -> list[str]:
    """The known hosts `expression` names (a name, an address or a label); TargetError if malformed."""

    def labelled(key: str, value: str) -> list[str]:
        return [h.host for h in known if h.labels.get(key) == value]

    def names(terms: list[str]) -> set[str]:
        if not terms:
            return set()
        return set(expand_targets(",".join(terms), _Anything((), (), MAX_SELECTED), labelled))

    terms = split_terms(expression)
    # Exclusions by name or label drop a host whatever address it has (and the other way round).
    excluded = names([t[1:] for t in terms if t.startswith("!") and len(t) > 1])
    named = names([t for t in terms if not t.startswith("!")]) - excluded
    chosen = {h.host for h in known if {h.host, h.address or h.host} & named}
    chosen -= {h.host for h in known if {h.host, h.address or h.host} & excluded}
    unknown = {n for n in named if parse_address(n) is None} - {h.host for h in known}
    return sorted(chosen | unknown)
