"""Node sets: `web[01-20]`, `10.0.0.[1-40,42]`, `db[1-3]-[a,b]` to the names they stand for. Pure."""

from __future__ import annotations

import re

from .errors import TargetError, too_many
from .hosts import is_number

NODESET = re.compile(r"\[([0-9A-Za-z][0-9A-Za-z,-]*)\]")
_MAX_NODESET_DIGITS = 9  # a number in brackets; longer ones name more hosts than any cap anyway


def _nodeset_items(term: str, inner: str, limit: int) -> list[str]:
    """`01-03,7,b` -> ['01', '02', '03', '7', 'b']: numbers zero-padded to the width they are
    written in; words as they are. More than `limit` items are refused before they are listed."""
    items: list[str] = []
    for part in inner.split(","):
        low, sep, high = part.partition("-")
        if not sep and low.isalnum() and low.isascii():
            items.append(low)
        else:
            if not is_number(low) or not is_number(high):
                raise TargetError(term, f"[{inner}]: {part!r} is not a number, a range of numbers or a word")
            if max(len(low), len(high)) > _MAX_NODESET_DIGITS:
                raise TargetError(
                    term, f"[{inner}]: numbers in brackets have at most {_MAX_NODESET_DIGITS} digits"
                )
            start, end = int(low), int(high)
            if end < start:
                raise TargetError(term, f"[{inner}]: range {part} ends before it starts")
            if len(items) + end - start + 1 > limit:
                raise too_many(term, "node set", len(items) + end - start + 1, limit)
            items.extend(f"{n:0{len(low)}d}" for n in range(start, end + 1))
        if len(items) > limit:
            raise too_many(term, "node set", len(items), limit)
    return items


def expand_nodeset(term: str, limit: int) -> list[str]:
    """`rack[1-2]-n[01-02]` -> rack1-n01, rack1-n02, rack2-n01, rack2-n02; at most `limit` names."""
    names = [""]
    rest = term
    while match := NODESET.search(rest):
        items = _nodeset_items(term, match.group(1), limit)
        if len(names) * len(items) > limit:
            raise too_many(term, "node set", len(names) * len(items), limit)
        prefix = rest[: match.start()]
        names = [f"{name}{prefix}{item}" for name in names for item in items]
        rest = rest[match.end() :]
    if "[" in rest or "]" in rest:
        raise TargetError(
            term,
            "brackets hold numbers, ranges and words: web[01-20], 10.0.0.[1-40,42], db[1-3]-[a,b]",
        )
    return [name + rest for name in names]
