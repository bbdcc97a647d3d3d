"""Sample summaries: what a gateway's fleet view, presence and alerts need of each sample, many
hosts to one message. Pure.

An agent publishes one summary message per round trip (`topics.SUMMARY_CHANNEL`) beside the full
samples (`topics.CPU_CHANNEL`): a gateway reads every host's latest values from the summaries,
a few hosts a row, and the full samples only while someone watches them in detail. A message is
`{"v":1,"hosts":[[host, ts, interval, cpus, total, mem, load1, disk, net_rx, net_tx, uptime], ...]}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from .messages import CpuSample

VERSION = 1
HOST_MAX = 253


class Summary(NamedTuple):
    """One sample as the fleet view, presence and alert rules read it."""

    host: str
    ts: float
    interval: float
    cpus: int
    total: float
    mem: float
    load1: float
    disk: float | None = None
    net_rx: float | None = None
    net_tx: float | None = None
    uptime: float | None = None


FIELDS = Summary._fields


def summary_of(sample: CpuSample) -> Summary:
    """The summary of a (valid) sample."""
    return Summary(
        sample.host,
        sample.ts,
        sample.interval,
        len(sample.percpu),
        sample.total,
        sample.mem,
        sample.load[0],
        sample.disk,
        sample.net_rx,
        sample.net_tx,
        sample.uptime,
    )


def encode(summaries: Sequence[Summary]) -> str:
    """One message holding these summaries."""
    return json.dumps({"v": VERSION, "hosts": summaries}, separators=(",", ":"))


def decode(data: str | bytes) -> tuple[list[Summary], list[str]]:
    """The summaries of a message, and a sentence for each row left out as malformed (the others
    stand). ValueError, saying why, when the message as a whole is not one."""
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"a summary message is not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ValueError(f"a summary message must be an object with v {VERSION}")
    rows = message.get("hosts")
    if not isinstance(rows, list):
        raise ValueError("a summary message's hosts must be a list")
    summaries: list[Summary] = []
    errors: list[str] = []
    for index, row in enumerate(rows):
        try:
            summaries.append(_row(row))
        except ValueError as exc:
            errors.append(f"summary row {index}: {exc}")
    return summaries, errors


def _row(row: Any) -> Summary:
    if not isinstance(row, list) or len(row) != len(FIELDS):
        raise ValueError(f"must be a list of {len(FIELDS)} values ({', '.join(FIELDS)})")
    host, ts, interval, cpus, total, mem, load1, disk, net_rx, net_tx, uptime = row
    if not isinstance(host, str) or not 0 < len(host) <= HOST_MAX:
        raise ValueError(f"host must be a name of 1 to {HOST_MAX} characters")
    if type(cpus) is not int or cpus < 0:
        raise ValueError(f"cpus of {host} must be a whole number, 0 or more")
    return Summary(
        host,
        _number(host, "ts", ts),
        _number(host, "interval", interval, low=0.0, strict=True),
        cpus,
        _number(host, "total", total, 0.0, 100.0),
        _number(host, "mem", mem, 0.0, 100.0),
        _number(host, "load1", load1, low=0.0),
        None if disk is None else _number(host, "disk", disk, 0.0, 100.0),
        None if net_rx is None else _number(host, "net_rx", net_rx, low=0.0),
        None if net_tx is None else _number(host, "net_tx", net_tx, low=0.0),
        None if uptime is None else _number(host, "uptime", uptime, low=0.0),
    )


def _number(
    host: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf, strict: bool = False
) -> float:
    """A finite number within [low, high] (above `low` when `strict`); ValueError naming the field."""
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{name} of {host} must be a number")
    if value < low or value > high or (strict and value == low):
        bounds = (
            f"above {low:g}" if strict else f"from {low:g}" + ("" if high == math.inf else f" to {high:g}")
        )
        raise ValueError(f"{name} of {host} must be a number {bounds}, not {value!r}")
    return float(value)
