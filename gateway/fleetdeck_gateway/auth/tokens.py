"""Token files and verifying tokens against them.

A line is `NAME ROLE SHA256HEX`, optionally followed by `expires=UNIX` (the token stops working
then) and `targets=EXPR` (it may only exec inside that target expression); `#` starts a comment.
Only hashes are stored; a token is shown once, when it is made. `add_token`, `remove_token` and
`rotate_token` edit the file (removing and rotating replace it atomically); `TokenStore` reads it
and notices every change, however the file was changed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleetdeck_common.messages import Role
from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError

from .atomicfile import append_durably, edit_lock, replace_atomically

logger = logging.getLogger(__name__)

ROLES: tuple[Role, ...] = ("viewer", "operator")
TOKEN_PREFIX = "fdk_"  # noqa: S105 (a prefix, not a secret)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
LINE_FORMAT = "'NAME ROLE SHA256HEX' and optionally expires=UNIX targets=EXPR"
FIELDS = ("expires", "targets")


_SHORT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR})


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to, and what the token file says it may do."""

    name: str
    role: Role
    token_hash: str
    expires: int | None = None  # unix seconds; None: never
    scope: str | None = None  # a target expression it may exec inside; None: the whole allowlist

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def exec_refusal(self, hosts: Sequence[str]) -> str | None:
        """Why this token may not run a command on `hosts` (expired, or a host outside its
        targets), or None if it may."""
        if self.expired():
            return f"{self.name}'s token has expired"
        if self.scope is None:
            return None
        outside = parse_scope(self.scope).first_outside(hosts)
        if outside is None:
            return None
        return f"{outside} is outside the targets {self.name}'s token may reach ({self.scope})"


class TokenFileError(ValueError):
    pass


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def read_token_file(path: Path) -> tuple[list[Identity], list[str]]:
    """The file's identities in file order, and an error for each line that is not valid."""
    return read_token_lines(path.read_text(), str(path))


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


Fingerprint = tuple[int, int, int, int, int, int]


class TokenStore:
    """Verifies tokens against a file, or a generated one-off token when there is no file.

    The file is re-read when it changes, noticed on every use by its (device, inode, size,
    mtime, ctime, links), so an edit in place, a file renamed over it or a change on a mounted
    volume all count; `refresh(thorough=True)` (the periodic sweep) also compares the content,
    for edits that keep size and timestamps. When the file cannot be read, no token is accepted
    until it can: revocation must not depend on the file being tidy.
    """

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._seen: Fingerprint | None = None
        self._content: bytes | None = None
        self._identities: dict[str, Identity] = {}
        self._problem: str | None = None
        self.generated_token: str | None = None
        if path is None:
            self.generated_token = new_token()
            digest = hash_token(self.generated_token)
            self._identities = {digest: Identity("admin", "operator", digest)}
        else:
            self._load(strict=True)

    @property
    def path(self) -> Path | None:
        return self._path

    def refresh(self, thorough: bool = False) -> None:
        """Re-read the file if it changed since it was last read."""
        if self._path is None:
            return
        try:
            seen = _fingerprint(self._path)
        except OSError:
            seen = None
        if seen is None or seen != self._seen:
            self._load(strict=False)
            return
        if thorough:
            try:
                same = self._path.read_bytes() == self._content
            except OSError:
                same = False
            if not same:
                self._load(strict=False)

    def _load(self, strict: bool) -> None:
        assert self._path is not None
        try:
            seen = _fingerprint(self._path)  # before reading: a write after this is noticed next time
            raw = self._path.read_bytes()
            text = raw.decode()
        except (OSError, UnicodeDecodeError) as exc:
            if not strict and isinstance(exc, OSError) and exc.errno in _SHORT_OF_RESOURCES and self._content:
                # Out of file descriptors or memory says nothing about the tokens: refusing them
                # all would close every open session. Keep what was read last; try again later.
                logger.warning("cannot read token file %s now (%s); keeping the last tokens", self._path, exc)
                return
            hint = f" (this process runs as uid {os.getuid()})" if isinstance(exc, PermissionError) else ""
            if strict:
                raise TokenFileError(f"cannot use token file {self._path}: {exc}{hint}") from exc
            self._refuse_all(f"cannot read token file {self._path}: {exc}{hint}")
            return
        if seen[5] == 0:
            # The name now points elsewhere but this process still sees the old file: a single
            # file bind-mounted into a container, replaced on the host by a rename.
            self._refuse_all(
                f"token file {self._path} was replaced or deleted, and this process still sees the old "
                "copy (a single file mounted into a container?): mount its folder instead, or restart"
            )
            self._seen, self._content = seen, raw
            return
        identities, errors = read_token_lines(text, str(self._path))
        if strict and errors:
            raise TokenFileError(errors[0])
        for error in errors:
            logger.error("ignoring a line of the token file (its token is refused): %s", error)
        self._identities = {identity.token_hash: identity for identity in identities}
        self._seen, self._content, self._problem = seen, raw, None
        logger.info("loaded %d tokens from %s", len(self._identities), self._path)

    def _refuse_all(self, problem: str) -> None:
        if problem != self._problem:
            logger.error("%s; no token is accepted until it can be read", problem)
        self._identities, self._problem = {}, problem
        self._seen = self._content = None

    def _valid(self, token_hash: str) -> Identity | None:
        identity = self._identities.get(token_hash)
        if identity is None or identity.expired(self._clock()):
            return None
        return identity

    def verify(self, token: str) -> Identity | None:
        """Who `token` belongs to, if it is in the file and has not expired."""
        self.refresh()
        return self._valid(hash_token(token))

    def current(self, token_hash: str) -> Identity | None:
        """What the file says now about the token with this hash (None if gone or expired)."""
        self.refresh()
        return self._valid(token_hash)

    def still_valid(self, identity: Identity) -> bool:
        """A session lives only as long as the token it was opened with."""
        return self.current(identity.token_hash) is not None

    def ended(self, identity: Identity) -> str | None:
        """Why sessions opened as `identity` must end now (a short reason), or None while its
        token is valid and unchanged. Does not re-read the file: call `refresh` first."""
        current = self._identities.get(identity.token_hash)
        if current is None:
            if self._problem is not None:
                return "token file unreadable"
            if any(other.name == identity.name for other in self._identities.values()):
                return "token rotated"
            return "token revoked"
        if current.expired(self._clock()):
            return "token expired"
        if current != identity:
            return "token changed (role, targets or expiry); reconnect"
        return None


def _fingerprint(path: Path) -> Fingerprint:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
