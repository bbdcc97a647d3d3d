"""Editing the token file: add, remove and rotate a token. Removing and rotating replace the file
atomically, and concurrent editors take turns (see `atomicfile`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from fleetdeck_common.messages import Role
from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError

from .atomicfile import append_durably, edit_lock, replace_atomically
from .identity import ROLES, Identity, hash_token, new_token
from .tokenfile import TokenFileError, check_name, format_line, parse_line


def _scope(expression: str | None) -> str | None:
    """A token's targets, checked with the target grammar and normalised (no spaces)."""
    if expression is None:
        return None
    try:
        return parse_scope(expression).expression
    except TargetError as exc:
        raise TokenFileError(f"bad targets: {exc}") from None


def _named(line: str, name: str) -> bool:
    """Whether a line (valid or not) is `name`'s."""
    return line.split("#", 1)[0].split()[:1] == [name]


def add_token(
    path: Path,
    name: str,
    role: Role,
    expires: int | None = None,
    scope: str | None = None,
) -> str:
    """Append a new token for `name` to the file (created 0600 if missing); return the token."""
    check_name(name)
    if role not in ROLES:
        raise TokenFileError(f"role must be viewer or operator, not {role!r}")
    scope = _scope(scope)
    with edit_lock(path):
        text = path.read_text() if path.exists() else ""
        if any(_named(line, name) for line in text.splitlines()):
            raise TokenFileError(
                f"{path} already has a token named {name!r}: 'fleetdeck token rotate {name}' gives it "
                f"a new one, 'fleetdeck token remove {name}' removes it"
            )
        token = new_token()
        append_durably(path, format_line(Identity(name, role, hash_token(token), expires, scope)) + "\n")
    return token


def remove_token(path: Path, name: str) -> int:
    """Remove `name`'s lines (replacing the file atomically); how many there were."""
    with edit_lock(path):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not _named(line, name)]
        if len(kept) == len(lines):
            raise TokenFileError(f"{path} has no token named {name!r}")
        replace_atomically(path, "".join(kept))
    return len(lines) - len(kept)


def rotate_token(
    path: Path, name: str, expires: int | Literal["keep"] | None = "keep"
) -> tuple[str, Identity]:
    """Give `name` a new token in place of the old one (same role and targets; the same expiry
    unless `expires` is given), replacing the file atomically. Returns the new token (for the
    caller to show once) and the line's new identity."""
    with edit_lock(path):
        lines = path.read_text().splitlines(keepends=True)
        numbers = [n for n, line in enumerate(lines) if _named(line, name)]
        if not numbers:
            raise TokenFileError(f"{path} has no token named {name!r}")
        if len(numbers) > 1:
            raise TokenFileError(
                f"{path} has {len(numbers)} lines named {name!r}; remove the extra ones first"
            )
        number = numbers[0]
        content, hash_mark, comment = lines[number].rstrip("\n").partition("#")
        try:
            old = parse_line(content)
        except TokenFileError as exc:
            raise TokenFileError(f"{path}:{number + 1}: {exc}; fix or remove that line first") from None
        assert old is not None
        lifetime = old.expires if expires == "keep" else expires
        if lifetime is not None and lifetime <= time.time():
            raise TokenFileError(f"{name}'s token has expired; give the new one a lifetime with --expires")
        token = new_token()
        new = Identity(name, old.role, hash_token(token), lifetime, old.scope)
        lines[number] = format_line(new) + (f"  #{comment}" if hash_mark else "") + "\n"
        replace_atomically(path, "".join(lines))
    return token, new
