"""The rules in use: read again when the file changes or on request (SIGHUP); a bad new file keeps
the old rules, says why, and every reload is reported (to the audit trail, in the gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from fleetdeck_common.alerts.rules import RulesError
from fleetdeck_gateway.alerts.rulebook import RuleBook
from tests.support.waiting import eventually

ONE = "rules:\n  - {name: a, expr: offline}\n"
TWO = "rules:\n  - {name: a, expr: offline}\n  - {name: b, expr: disk > 95}\n"
BAD = "rules:\n  - {name: a, expr: offline, for: soon}\n"


async def test_a_changed_file_is_read_again_and_a_bad_one_keeps_the_old_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ONE)
    reloads: list[tuple[int | None, str | None]] = []

    async def reported(file: str, rules: int | None, error: str | None) -> None:
        reloads.append((rules, error))

    book = RuleBook(path, on_reload=reported)
    watching = asyncio.create_task(book.watch(poll=0.05))
    try:
        path.write_text(BAD)
        await eventually(lambda: book.error is not None, 10, "the bad file noticed")
        assert (
            book.names() == {"a"}
            and book.error == "rule 'a': for: 'soon' is not a duration such as 30s, 5m or 1h"
        )
        assert book.describe()["error"] == book.error
        path.write_text(TWO + "# the same rules, said again\n")
        await eventually(lambda: book.names() == {"a", "b"}, 10, "the good file in use")
        assert book.error is None and book.describe()["rules"][1]["expr"] == "disk > 95"
        assert [count for count, _ in reloads] == [None, 2] and reloads[0][1] is not None
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


async def test_a_reload_on_request_reads_the_file_even_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ONE)
    reloads: list[int | None] = []

    async def reported(file: str, rules: int | None, error: str | None) -> None:
        reloads.append(rules)

    book = RuleBook(path, on_reload=reported)
    watching = asyncio.create_task(book.watch(poll=3600))  # no polling: only the request counts
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, book.request_reload)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually(lambda: reloads == [1], 10, "a reload on SIGHUP")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


def test_a_bad_file_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    with pytest.raises(RulesError, match="rule 'a': for:"):
        RuleBook(path)
    assert RuleBook(None).rules == [] and not RuleBook(None).configured
