"""Token files: `NAME ROLE SHA256HEX` per line. Only hashes are stored; tokens are shown once."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleetdeck_common.messages import Role

logger = logging.getLogger(__name__)

ROLES: tuple[Role, ...] = ("viewer", "operator")
TOKEN_PREFIX = "fdk_"  # noqa: S105 (a prefix, not a secret)
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    token_hash: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


class TokenFileError(ValueError):
    pass


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_token_file(text: str, source: str = "tokens file") -> dict[str, Identity]:
    """Identities by token hash; a malformed line is an error naming its line number."""
    identities: dict[str, Identity] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise TokenFileError(f"{source}:{number}: expected 'NAME ROLE SHA256HEX'")
        name, role, digest = parts
        if not _NAME.match(name):
            raise TokenFileError(f"{source}:{number}: bad name {name!r}")
        if role not in ROLES:
            raise TokenFileError(f"{source}:{number}: role must be viewer or operator, not {role!r}")
        if not _HEX.match(digest.lower()):
            raise TokenFileError(f"{source}:{number}: the hash must be 64 hex digits (SHA-256)")
        identities[digest.lower()] = Identity(name, role, digest.lower())
    return identities


def add_token(path: Path, name: str, role: Literal["viewer", "operator"]) -> str:
    """Append a new token for `name` to the file (created 0600 if missing); return the token."""
    if not _NAME.match(name):
        raise TokenFileError(f"bad name {name!r}: letters, digits and _.@- only, at most 64")
    existing = parse_token_file(path.read_text(), str(path)) if path.exists() else {}
    if any(identity.name == name for identity in existing.values()):
        raise TokenFileError(f"{path} already has a token named {name!r}")
    token = new_token()
    if not path.exists():
        path.touch(mode=0o600)
    with path.open("a") as handle:
        handle.write(f"{name} {role} {hash_token(token)}\n")
    return token


class TokenStore:
    """Verifies tokens against a file (re-read when it changes) or a generated one-off token."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._mtime: float | None = None
        self._identities: dict[str, Identity] = {}
        self.generated_token: str | None = None
        if path is None:
            self.generated_token = new_token()
            digest = hash_token(self.generated_token)
            self._identities = {digest: Identity("admin", "operator", digest)}
        else:
            self._reload(strict=True)

    def _reload(self, strict: bool) -> None:
        assert self._path is not None
        try:
            mtime = self._path.stat().st_mtime
            if mtime == self._mtime:
                return
            identities = parse_token_file(self._path.read_text(), str(self._path))
        except (OSError, TokenFileError) as exc:
            if strict:
                hint = (
                    f" (this process runs as uid {os.getuid()})" if isinstance(exc, PermissionError) else ""
                )
                raise TokenFileError(f"cannot use token file {self._path}: {exc}{hint}") from exc
            logger.error("keeping the previous tokens: %s", exc)
            return
        self._identities, self._mtime = identities, mtime
        logger.info("loaded %d tokens from %s", len(identities), self._path)

    def verify(self, token: str) -> Identity | None:
        if self._path is not None:
            self._reload(strict=False)
        return self._identities.get(hash_token(token))

    def still_valid(self, identity: Identity) -> bool:
        """A session lives only as long as the token it was opened with."""
        if self._path is not None:
            self._reload(strict=False)
        return identity.token_hash in self._identities
