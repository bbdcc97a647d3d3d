"""The alert rules in use, read again on SIGHUP and when the file changes. A bad new file keeps
the rules in use, logs why and shows the error (`GET /api/alerts/rules`); every reload, good or
bad, goes to the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fleetdeck_common.alerts.rules import Rule, RulesError
from fleetdeck_common.alerts.rulesfile import load_rules

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0

# Told of each reload: the file, how many rules it holds (None when refused), the error.
Reloaded = Callable[[str, int | None, str | None], Awaitable[None]]


async def _nothing(path: str, rules: int | None, error: str | None) -> None:
    return None


def _stamp(path: Path) -> tuple[float, int, int] | None:
    """What changes when the file does (also when it is replaced by a rename); None if missing."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime, stat.st_size, stat.st_ino


class RuleBook:
    def __init__(
        self,
        path: Path | None,
        on_reload: Reloaded = _nothing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Reads the file at once: RulesError if it is bad (the gateway refuses to start)."""
        self._path = path
        self._on_reload = on_reload
        self._clock = clock
        self.rules: list[Rule] = load_rules(path) if path is not None else []
        self.error: str | None = None
        self.loaded = clock()
        self._stamp = _stamp(path) if path is not None else None
        self._wanted = asyncio.Event()

    @property
    def configured(self) -> bool:
        """Whether this gateway was given a rules file (only then does it evaluate)."""
        return self._path is not None

    def names(self) -> set[str]:
        return {rule.name for rule in self.rules}

    def describe(self) -> dict[str, Any]:
        """What `GET /api/alerts/rules` answers."""
        return {
            "file": str(self._path) if self._path is not None else None,
            "loaded": round(self.loaded, 3),
            "rules": [rule.describe() for rule in self.rules],
            "error": self.error,
        }

    def request_reload(self) -> None:
        """Read the file again soon (SIGHUP)."""
        self._wanted.set()

    async def reload(self) -> bool:
        """Read the file again: True if its rules are now in use."""
        if self._path is None:
            return False
        self._stamp = _stamp(self._path)
        try:
            rules = load_rules(self._path)
        except RulesError as exc:
            self.error = str(exc)
            logger.error("alert rules not reloaded, the previous ones stay in use: %s", exc)
            await self._on_reload(str(self._path), None, self.error)
            return False
        self.rules, self.error, self.loaded = rules, None, self._clock()
        logger.info("alert rules reloaded from %s: %d rules", self._path, len(rules))
        await self._on_reload(str(self._path), len(rules), None)
        return True

    async def watch(self, poll: float = POLL_SECONDS) -> None:
        """Reload when asked to or when the file changes."""
        if self._path is None:
            return
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), poll)
            wanted = self._wanted.is_set()
            self._wanted.clear()
            if wanted or _stamp(self._path) != self._stamp:
                await self.reload()
