"""Reading the alert rules file from disk: the one part of the rules that does I/O."""

from __future__ import annotations

from pathlib import Path

from .rules import MAX_FILE_BYTES, Rule, RulesError, parse_rules


def load_rules(path: Path) -> list[Rule]:
    """The rules in `path`; RulesError saying why they cannot be used (unreadable, or wrong)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise RulesError(f"the rules file {str(path)!r} is not UTF-8 text") from None
    return parse_rules(text)
