"""Fold per-host results into ClusterShell-style groups: identical output, one folded host set.

Pure: no I/O. Used by the worker (the `done` frame carries the groups) and the CLI.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from .messages import HOST_STATUSES, HostStatus, OutputGroup, Result
from .targets import sort_hosts

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _ipv4_prefix(host: str) -> tuple[str, int] | None:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return None
    prefix, last = str(address).rsplit(".", 1)
    return prefix, int(last)


def fold_hosts(hosts: Iterable[str]) -> str:
    """`127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.9` -> `127.0.0.[2-4,9]` (ClusterShell notation)."""
    by_prefix: dict[str, list[int]] = defaultdict(list)
    by_name: dict[tuple[str, int], list[int]] = defaultdict(list)
    plain: list[str] = []
    for host in sort_hosts(list(dict.fromkeys(hosts))):
        v4 = _ipv4_prefix(host)
        numbered = _NUMBERED.match(host)
        if v4:
            by_prefix[v4[0]].append(v4[1])
        elif numbered and ":" not in host:
            by_name[(numbered.group(1), len(numbered.group(2)))].append(int(numbered.group(2)))
        else:
            plain.append(host)
    parts = [_fold(f"{prefix}.", numbers, 0) for prefix, numbers in by_prefix.items()]
    parts += [_fold(prefix, numbers, width) for (prefix, width), numbers in sorted(by_name.items())]
    return ",".join(parts + plain)


def _fold(prefix: str, numbers: list[int], width: int) -> str:
    runs = _runs(numbers)
    if len(runs) == 1 and runs[0][0] == runs[0][1]:
        return f"{prefix}{runs[0][0]:0{width}d}"
    inner = ",".join(f"{a:0{width}d}" if a == b else f"{a:0{width}d}-{b:0{width}d}" for a, b in runs)
    return f"{prefix}[{inner}]"


def targets_expression(hosts: Iterable[str]) -> str:
    """A target expression in fleetdeck's own grammar for exactly these hosts (last-octet ranges)."""
    by_prefix: dict[str, list[int]] = defaultdict(list)
    others: list[str] = []
    for host in sort_hosts(list(dict.fromkeys(hosts))):
        v4 = _ipv4_prefix(host)
        if v4:
            by_prefix[v4[0]].append(v4[1])
        else:
            others.append(host)
    terms = [
        f"{prefix}.{a}" if a == b else f"{prefix}.{a}-{b}"
        for prefix, numbers in by_prefix.items()
        for a, b in _runs(numbers)
    ]
    return ",".join(terms + others)


def result_output(result: Result) -> str:
    """The text a person compares hosts by: stdout, then stderr, then the error."""
    parts = [result.stdout]
    if result.stderr:
        parts.append(result.stderr)
    if result.error:
        parts.append(result.error)
    return "\n".join(p for p in parts if p) if any(parts) else ""


GROUP_OUTPUT_CHARS = 2000
HOST_PLACEHOLDER = "{host}"
HOST_LEGEND = "{host} is each host's own name or address"


def shows_placeholder(group: OutputGroup) -> bool:
    """Whether a group's output stands for several hosts' outputs with {host} (then say what it is)."""
    return group.count > 1 and HOST_PLACEHOLDER in group.output


def generalise(text: str, host: str) -> str:
    """`text` with the host's own name or address written as {host}, so outputs that differ only
    by it (`connection refused on 127.0.0.7`, `hello from web01`) compare equal."""
    return re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])(?!\.\w)", HOST_PLACEHOLDER, text)


def group_outputs(results: Sequence[Result], output_chars: int = GROUP_OUTPUT_CHARS) -> list[OutputGroup]:
    """Hosts with the same status, exit code and output, biggest group first.

    Hosts are grouped on their whole output, with each host's own name or address taken as
    equal; a group whose outputs differ only by it shows them with {host}. Each group shows only
    its first `output_chars` characters, so the summary stays small (every host's full output is
    in its result).
    """
    groups: dict[tuple[HostStatus, int | None, str], list[str]] = defaultdict(list)
    raw_outputs: dict[tuple[HostStatus, int | None, str], set[str]] = defaultdict(set)
    for result in results:
        raw = result_output(result)
        key = (result.status, result.exit_code, generalise(raw, result.host))
        groups[key].append(result.host)
        raw_outputs[key].add(raw)
    folded = []
    for key, hosts in groups.items():
        status, code, general = key
        output = next(iter(raw_outputs[key])) if len(raw_outputs[key]) == 1 else general
        folded.append(
            OutputGroup(
                hosts=fold_hosts(hosts),
                count=len(hosts),
                status=status,
                exit_code=code,
                output=output[:output_chars],
                output_truncated=len(output) > output_chars,
            )
        )
    return sorted(folded, key=lambda g: (-g.count, g.status, g.hosts))


def summarize(results: Iterable[Result]) -> dict[str, int]:
    """Count of results per status, in the protocol's status order, zeros left out."""
    counts = Counter(r.status for r in results)
    return {status: counts[status] for status in HOST_STATUSES if counts[status]}


def retry_targets(results: Iterable[Result]) -> str:
    """The expression that re-runs the command on every host that did not succeed."""
    return targets_expression(r.host for r in results if r.status != "ok")
