"""Verifying tokens against the token file, which is re-read whenever it changes."""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .identity import Identity, hash_token, new_token
from .tokenfile import TokenFileError, read_token_lines

logger = logging.getLogger(__name__)

_SHORT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR})


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
