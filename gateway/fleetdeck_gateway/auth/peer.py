"""Where a request or socket comes from, known to everything that serves it.

The address is the client's as uvicorn sees it: with `proxy_headers` on (see `server`), uvicorn
takes it from `X-Forwarded-For` when the connection comes from a trusted proxy
(`FORWARDED_ALLOW_IPS`, default 127.0.0.1), else it is the connection's own. `PeerMiddleware`
puts it in a context variable for the length of each request and socket, so services deep in the
call (the job service, revocation) can audit it without every caller passing it along; tasks a
socket starts inherit it.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

UNKNOWN = "unknown"
MAX_ADDRESS_CHARS = 64


@dataclass(frozen=True)
class Peer:
    address: str
    via: Literal["http", "ws"]


_current: ContextVar[Peer | None] = ContextVar("fleetdeck_peer", default=None)


def clean_address(host: Any) -> str:
    """An address fit for logs and keys: an IP in its canonical form; anything else (a value a
    trusted proxy forwarded, a test client's name) cut short and stripped to printable ASCII."""
    if not isinstance(host, str) or not host:
        return UNKNOWN
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        printable = "".join(ch for ch in host if 32 < ord(ch) < 127)
        return printable[:MAX_ADDRESS_CHARS] or UNKNOWN


def address_of(scope: Scope) -> str:
    client = scope.get("client")
    return clean_address(client[0] if client else None)


def current_peer() -> Peer | None:
    """The peer of the request or socket being served, or None outside of one."""
    return _current.get()


class PeerMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so the context variable reaches the endpoint and the
    tasks it starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = _current.set(Peer(address_of(scope), "ws" if scope["type"] == "websocket" else "http"))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
