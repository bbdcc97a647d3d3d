"""Who a token belongs to, and making and hashing tokens (only hashes are ever stored)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck_common.messages import Role
from fleetdeck_common.scope import parse_scope

ROLES: tuple[Role, ...] = ("viewer", "operator")
TOKEN_PREFIX = "fdk_"  # noqa: S105 (a prefix, not a secret)


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


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
