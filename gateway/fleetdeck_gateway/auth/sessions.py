"""Login sessions in the broker, by the hash of their cookie. Owns the session keys."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

from fleetdeck_common import topics
from fleetdeck_common.acl import grant
from fleetdeck_common.broker import KeyValue

from .identity import Identity, hash_token

SESSION_TTL_SECONDS = 12 * 3600
ACCESS = (grant(topics.key("session", "*"), read=["gateway"], write=["gateway"]),)


def _session_key(session_id: str) -> str:
    # Only the hash is stored: a copy of the broker's data does not log anybody in.
    return topics.key("session", hash_token(session_id))


class SessionStore:
    def __init__(
        self, broker: KeyValue, ttl: float = SESSION_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._broker = broker
        self.ttl = ttl
        self._clock = clock

    def lifetime(self, identity: Identity) -> int:
        """Seconds a session opened now as `identity` lasts: the TTL, cut short by the token's expiry."""
        seconds = self.ttl
        if identity.expires is not None:
            seconds = min(seconds, identity.expires - self._clock())
        return max(int(seconds), 1)

    async def open(self, identity: Identity) -> str:
        """A new session for `identity`; returns the cookie value. The record keeps the token's
        hash, so each use checks the token is still in the file (on whichever gateway)."""
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"name": identity.name, "role": identity.role, "token": identity.token_hash})
        await self._broker.set(_session_key(session_id), record, self.lifetime(identity))
        return session_id

    async def close(self, session_id: str) -> None:
        await self._broker.delete(_session_key(session_id))

    async def find(self, session_id: str) -> Identity | None:
        """Who opened the session, if it is still open (the token may since have been revoked)."""
        raw = await self._broker.get(_session_key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return Identity(data["name"], data["role"], data["token"])
