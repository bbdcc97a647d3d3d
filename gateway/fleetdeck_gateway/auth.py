"""Who is asking: bearer tokens, session cookies (stored in the broker) and the Origin check."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from fleetdeck_common import topics
from fleetdeck_common.broker import Broker

from .tokens import Identity, TokenStore, hash_token

SESSION_COOKIE = "fleetdeck_session"
SESSION_TTL_SECONDS = 12 * 3600


class Authenticator:
    def __init__(self, tokens: TokenStore, broker: Broker, allowed_origins: list[str]) -> None:
        self.tokens = tokens
        self._broker = broker
        self._allowed_origins = {_normalise_origin(o) for o in allowed_origins}

    async def open_session(self, identity: Identity) -> str:
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"name": identity.name, "role": identity.role, "token": identity.token_hash})
        await self._broker.set(topics.session_key(hash_token(session_id)), record, SESSION_TTL_SECONDS)
        return session_id

    async def close_session(self, session_id: str) -> None:
        await self._broker.delete(topics.session_key(hash_token(session_id)))

    async def _from_session(self, session_id: str) -> Identity | None:
        raw = await self._broker.get(topics.session_key(hash_token(session_id)))
        if raw is None:
            return None
        data = json.loads(raw)
        identity = Identity(data["name"], data["role"], data["token"])
        return identity if self.tokens.still_valid(identity) else None

    async def identify(self, conn: HTTPConnection) -> tuple[Identity | None, bool]:
        """The caller's identity, and whether it came from the session cookie (a browser)."""
        header = conn.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return self.tokens.verify(header[7:].strip()), False
        session_id = conn.cookies.get(SESSION_COOKIE)
        if session_id:
            return await self._from_session(session_id), True
        return None, False

    def origin_allowed(self, conn: HTTPConnection) -> bool:
        """Browsers always send Origin on WebSockets; scripts without one are judged by token alone."""
        origin = conn.headers.get("origin")
        if origin is None:
            return True
        if self._allowed_origins:
            return _normalise_origin(origin) in self._allowed_origins
        host = conn.headers.get("host", "")
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def _normalise_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
