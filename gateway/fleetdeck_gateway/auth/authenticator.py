"""Who is asking: bearer tokens, session cookies and the Origin check."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from .identity import Identity
from .sessions import SessionStore
from .tokenstore import TokenStore

SESSION_COOKIE = "fleetdeck_session"


class Authenticator:
    def __init__(self, tokens: TokenStore, sessions: SessionStore, allowed_origins: list[str]) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._allowed_origins = {_normalise_origin(o) for o in allowed_origins}

    async def _from_session(self, session_id: str) -> Identity | None:
        """The session's identity as the token file has it now: a session lives only as long as
        the token it was opened with, and follows its role, targets and expiry."""
        opened = await self._sessions.find(session_id)
        return None if opened is None else self._tokens.current(opened.token_hash)

    async def identify(self, conn: HTTPConnection) -> tuple[Identity | None, bool]:
        """The caller's identity, and whether it came from the session cookie (a browser)."""
        header = conn.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return self._tokens.verify(header[7:].strip()), False
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
