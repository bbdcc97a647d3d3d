"""A rule's condition, `METRIC OP NUMBER` or `offline`, and the `for` duration. Pure."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

METRICS = ("total", "mem", "load1", "disk", "net_rx", "net_tx")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
OFFLINE = "offline"
MAX_FOR_SECONDS = 30 * 86400.0

_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*([<>=!]+)\s*(\S+)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Condition:
    """What a rule checks: a metric against a threshold, or (metric None) that the host is offline."""

    metric: str | None
    op: str = ">"
    threshold: float = 0.0

    @property
    def offline(self) -> bool:
        return self.metric is None

    def holds(self, value: float) -> bool:
        """Whether `value` (of this condition's metric) meets it."""
        return OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return OFFLINE if self.metric is None else f"{self.metric} {self.op} {self.threshold:g}"


def parse_expr(text: str) -> Condition:
    """`total > 90`, `net_rx >= 1e8` or `offline`; ValueError saying what is wrong."""
    if text.strip() == OFFLINE:
        return Condition(None)
    match = _EXPR.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not METRIC OP NUMBER (as in `total > 90`) or `offline`")
    metric, op, number = match.groups()
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)} (or `offline`)")
    if op not in OPERATORS:
        raise ValueError(f"bad operator {op!r}; one of {', '.join(OPERATORS)}")
    try:
        threshold = float(number)
    except ValueError:
        raise ValueError(f"{number!r} is not a number") from None
    if not math.isfinite(threshold):
        raise ValueError(f"{number!r} is not a finite number")
    return Condition(metric, op, threshold)


def parse_duration(text: str | int | float) -> float:
    """`30s`, `5m`, `1h30m`, `2d` or a number of seconds, as seconds; ValueError if malformed."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        compact = text.strip()
        parts = _DURATION_PART.findall(compact)
        if not compact or "".join(n + u for n, u in parts) != compact:
            raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not 0 <= seconds <= MAX_FOR_SECONDS:
        raise ValueError(f"{text!r} is out of range (0s to {MAX_FOR_SECONDS / 86400:g}d)")
    return seconds
