"""What each benchmark aims at and how its results read: the figures summed up and rendered as its
committed Markdown summary (bench/NAME.md). The benchmark modules beside bench/ measure."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..harness import table

Column = tuple[str, Callable[[Any], str]]


def columns(spec: Sequence[Column], items: Iterable[Any]) -> str:
    """A Markdown table with a column per (header, the cell an item shows) of `spec`."""
    return table([header for header, _ in spec], [[cell(item) for _, cell in spec] for item in items])
