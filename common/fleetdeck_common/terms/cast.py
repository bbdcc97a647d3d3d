"""A terminal's recording as asciicast v2, pure: the header line, output and resize events
(never input), and the cap past which output is left out and the cut is marked."""

from __future__ import annotations

import json

DEFAULT_LIMIT = 8 * 1024 * 1024  # characters of events kept per session


def header(cols: int, rows: int, started: float, title: str) -> str:
    return json.dumps(
        {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(started),
            "title": title,
            "env": {"TERM": "xterm-256color"},
        }
    )


def cut_note(limit: int) -> str:
    return f"\r\n[fleetdeck: the recording stops here: it reached its cap of {limit} characters]\r\n"


class CastWriter:
    """The events of one session as lines, counting what they take, marking the cut once."""

    def __init__(self, started: float, limit: int = DEFAULT_LIMIT) -> None:
        self._started = started
        self._limit = limit
        self._used = 0
        self.cut = False

    def _event(self, now: float, kind: str, data: str) -> str:
        return json.dumps([round(max(now - self._started, 0.0), 6), kind, data], ensure_ascii=False)

    def output(self, now: float, data: str) -> list[str]:
        """The lines to append for this output: none once cut, the cut's note when it is reached."""
        return self._add(now, "o", data)

    def resize(self, now: float, cols: int, rows: int) -> list[str]:
        return self._add(now, "r", f"{cols}x{rows}")

    def _add(self, now: float, kind: str, data: str) -> list[str]:
        if self.cut:
            return []
        line = self._event(now, kind, data)
        if self._used + len(line) > self._limit:
            self.cut = True
            return [self._event(now, "o", cut_note(self._limit))]
        self._used += len(line)
        return [line]
