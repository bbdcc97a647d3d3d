"""The token file's format: reading and writing its lines.

A line is `NAME ROLE SHA256HEX`, optionally followed by `expires=UNIX` (the token stops working
then) and `targets=EXPR` (it may only exec inside that target expression); `#` starts a comment.
Only hashes are stored; a token is shown once, when it is made (see `tokenedit`).
"""

from __future__ import annotations

import re
from pathlib import Path

from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError

from .identity import ROLES, Identity

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
LINE_FORMAT = "'NAME ROLE SHA256HEX' and optionally expires=UNIX targets=EXPR"
FIELDS = ("expires", "targets")


class TokenFileError(ValueError):
    pass


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise TokenFileError(f"bad name {name!r}: letters, digits and _.@- only, at most 64")


def parse_line(line: str) -> Identity | None:
    """One line of a token file (None if blank or a comment); TokenFileError saying what is wrong."""
    parts = line.split("#", 1)[0].split()
    if not parts:
        return None
    if len(parts) < 3 or any("=" not in extra for extra in parts[3:]):
        raise TokenFileError(f"expected {LINE_FORMAT}")
    name, role, digest = parts[0], parts[1], parts[2].lower()
    check_name(name)
    if role not in ROLES:
        raise TokenFileError(f"role must be viewer or operator, not {role!r}")
    if not _HEX.match(digest):
        raise TokenFileError("the hash must be 64 hex digits (SHA-256)")
    fields: dict[str, str] = {}
    for extra in parts[3:]:
        key, _, value = extra.partition("=")
        if key not in FIELDS:
            raise TokenFileError(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
        if key in fields:
            raise TokenFileError(f"{key}= given twice")
        fields[key] = value
    expires: int | None = None
    if "expires" in fields:
        if not fields["expires"].isdigit():
            raise TokenFileError(f"expires= takes unix seconds, not {fields['expires']!r}")
        expires = int(fields["expires"])
    scope: str | None = None
    if "targets" in fields:
        try:
            scope = parse_scope(fields["targets"]).expression
        except TargetError as exc:
            raise TokenFileError(f"targets=: {exc}") from None
    return Identity(name, role, digest, expires, scope)


def format_line(identity: Identity) -> str:
    """The file line for `identity` (no newline)."""
    line = f"{identity.name} {identity.role} {identity.token_hash}"
    if identity.expires is not None:
        line += f" expires={identity.expires}"
    if identity.scope is not None:
        line += f" targets={identity.scope}"
    return line


def read_token_lines(text: str, source: str = "tokens file") -> tuple[list[Identity], list[str]]:
    """Every valid line's identity in file order, and an error for each bad line (named by number)."""
    identities: list[Identity] = []
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            identity = parse_line(raw)
        except TokenFileError as exc:
            errors.append(f"{source}:{number}: {exc}")
            continue
        if identity is not None:
            identities.append(identity)
    return identities, errors


def parse_token_file(text: str, source: str = "tokens file") -> dict[str, Identity]:
    """Identities by token hash; a malformed line is an error naming its line number."""
    identities, errors = read_token_lines(text, source)
    if errors:
        raise TokenFileError(errors[0])
    return {identity.token_hash: identity for identity in identities}


def read_token_file(path: Path) -> tuple[list[Identity], list[str]]:
    """The file's identities in file order, and an error for each line that is not valid."""
    return read_token_lines(path.read_text(), str(path))
