"""The hosts a rule watches: its targets over the known hosts, offline ones included. Pure.

Rules are read once a second over the whole fleet, so targets made only of label selectors and
host names (the usual `@role=web !web-3`) are matched host by host without expanding anything;
anything else (addresses, ranges, node sets) goes through `history.select`, as history does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from fleetdeck_common.targets import normalise_hostname, split_terms
from fleetdeck_common.targets.hosts import parse_address
from fleetdeck_common.targets.labels import SELECTOR

from ..history.select import KnownHost, select_hosts


class Watched(KnownHost, Protocol):
    """A known host as a rule reads it: selected by name, address or label, and online or not."""

    @property
    def online(self) -> bool: ...


H = TypeVar("H", bound=KnownHost)


@dataclass(frozen=True)
class _Terms:
    """A target expression of labels and names only: what it includes and what it excludes."""

    labels: frozenset[tuple[str, str]]
    names: frozenset[str]
    not_labels: frozenset[tuple[str, str]]
    not_names: frozenset[str]

    def includes(self, host: KnownHost) -> bool:
        return _matches(host, self.labels, self.names) and not _matches(host, self.not_labels, self.not_names)


def _matches(host: KnownHost, labels: frozenset[tuple[str, str]], names: frozenset[str]) -> bool:
    if host.host in names or host.address in names:
        return True
    return any(host.labels.get(key) == value for key, value in labels)


@functools.lru_cache(maxsize=1024)
def _simple(targets: str) -> _Terms | None:
    """The expression as labels and names, or None if it holds any other kind of term."""
    found: dict[bool, tuple[set[tuple[str, str]], set[str]]] = {True: (set(), set()), False: (set(), set())}
    for raw in split_terms(targets):
        term = raw[1:] if raw.startswith("!") else raw
        labels, names = found[term == raw]
        selector = SELECTOR.match(term)
        if selector is not None:
            labels.add((selector.group(1), selector.group(2)))
            continue
        name = normalise_hostname(term) if "[" not in term and "/" not in term else None
        if (
            name is None
            or parse_address(term) is not None
            or ("-" in term and parse_address(term.split("-")[0]))
        ):
            return None
        names.add(name)
    (labels, names), (not_labels, not_names) = found[True], found[False]
    return _Terms(frozenset(labels), frozenset(names), frozenset(not_labels), frozenset(not_names))


def selected(targets: str | None, known: Sequence[H]) -> list[H]:
    """The known hosts `targets` names (every one when None); none if it no longer expands."""
    if targets is None:
        return list(known)
    simple = _simple(targets)
    if simple is not None:
        return [h for h in known if simple.includes(h)]
    try:
        names = set(select_hosts(targets, known))
    except ValueError:
        return []  # checked when loaded; a label that names nobody now selects nobody
    return [h for h in known if h.host in names]


class Selections:
    """Each rule's selection kept until the hosts' names, addresses or labels change (`version`)."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._names: dict[str | None, frozenset[str]] = {}

    def choose(self, targets: str | None, known: Sequence[H], version: int) -> list[H]:
        if targets is None:
            return list(known)
        if version != self._version:
            self._names.clear()
            self._version = version
        names = self._names.get(targets)
        if names is None:
            names = self._names[targets] = frozenset(h.host for h in selected(targets, known))
        return [h for h in known if h.host in names]
