"""How `fleetdeck exec` and `fleetdeck watch` print: a line per host, the grouped summary, or JSON lines."""

from __future__ import annotations

from typing import TextIO

from fleetdeck_common.grouping import HOST_LEGEND, shows_placeholder
from fleetdeck_common.messages import STATUS_TONES, Done, Result, Tone, dump

from .stdout_watch import StdoutClosed

_ANSI: dict[Tone, str] = {"good": "32", "bad": "31", "slow": "33", "unreachable": "35", "muted": "90"}


def _paint(text: str, status: str, colour: bool) -> str:
    tone = STATUS_TONES.get(status)  # type: ignore[call-overload]
    return f"\x1b[{_ANSI[tone] if tone else '0'}m{text}\x1b[0m" if colour else text


def _printable(text: str) -> str:
    """Output from hosts must not drive the operator's terminal: escape control characters."""
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)


def emit(out: TextIO, line: str) -> None:
    """One line to stdout; StdoutClosed once its reader is gone (not a lost gateway connection)."""
    try:
        print(line, file=out, flush=True)
    except BrokenPipeError:
        raise StdoutClosed from None


def format_result(result: Result, colour: bool) -> str:
    first = (result.stdout or result.stderr or result.error or "").strip().splitlines()
    code = "-" if result.exit_code is None else str(result.exit_code)
    line = f"{result.host:<16} {result.status:<11} exit {code:<4} {result.duration_ms:>6}ms"
    detail = _printable(first[0][:200]) if first else ""
    return f"{_paint(line, result.status, colour)}  {detail}".rstrip()


def format_summary(done: Done, colour: bool) -> list[str]:
    counts = ", ".join(f"{status} {count}" for status, count in done.summary.items())
    lines = [f"--- {sum(done.summary.values())} hosts in {done.duration_ms / 1000:.1f}s: {counts}"]
    if done.error:
        lines.append(_paint(f"job error: {_printable(done.error)}", "error", colour))
    legend = False
    for group in done.groups:
        header = f"{group.hosts} ({group.count}) {group.status}"
        lines.append(_paint(header, group.status, colour))
        output = group.output.splitlines()
        lines.extend(f"    {_printable(line)}" for line in output[:20])
        if len(output) > 20 or group.output_truncated:
            lines.append(f"    … (more output: GET /api/jobs/{done.job})")
        if not legend and shows_placeholder(group):  # once, where it first shows
            legend = True
            lines.append(f"    \x1b[90m{HOST_LEGEND}\x1b[0m" if colour else f"    {HOST_LEGEND}")
    if done.retry_targets:
        lines.append(f"re-run where it did not succeed: {done.retry_targets}")
    return lines


class TextOutput:
    """A line per host as it finishes, then the grouped summary; colours on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._colour = out.isatty()

    def result(self, result: Result) -> None:
        emit(self._out, format_result(result, self._colour))

    def done(self, done: Done) -> None:
        for line in format_summary(done, self._colour):
            emit(self._out, line)


class JsonOutput:
    """One JSON object per line: every `result` frame, then the `done` frame (for scripts)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def result(self, result: Result) -> None:
        emit(self._out, dump(result))

    def done(self, done: Done) -> None:
        emit(self._out, dump(done))


Output = TextOutput | JsonOutput
