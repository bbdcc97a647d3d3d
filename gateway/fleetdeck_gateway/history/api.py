"""`GET /api/hosts/{host}/history` and `GET /api/fleet/history`: any viewer may read them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleetdeck_common.audit import parse_since
from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.targets import TargetError

from ..auth.identity import Identity
from ..state import Gateway
from .select import select_hosts

DEFAULT_SPAN = "1h"
MAX_STEP = 366 * 86400


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _reader(request: Request) -> Gateway | Response:
    """The gateway, once the caller is known to have a token (any role may read history)."""
    gateway: Gateway = request.app.state.gateway
    identity: Identity | None
    identity, _from_cookie = await gateway.auth.identify(request)
    if identity is None:
        return error(401, "unauthorized", "a valid token (Bearer) or session cookie is needed")
    return gateway


def _params(query: QueryParams, now: float) -> tuple[float, float, int | None]:
    """since, until and step; ValueError with a sentence naming the parameter."""
    since = parse_since(query.get("since") or DEFAULT_SPAN, now)
    until = now
    if query.get("until"):
        try:
            until = parse_since(query["until"], now)
        except ValueError as exc:
            raise ValueError(str(exc).replace("since must be", "until must be", 1)) from None
    raw = query.get("step")
    if raw is None or raw == "":
        return since, until, None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= MAX_STEP:
        raise ValueError(f"step must be a whole number of seconds from 1 to {MAX_STEP}, not {raw[:20]!r}")
    return since, until, int(raw)


async def host_history(request: Request) -> Response:
    gateway = await _reader(request)
    if isinstance(gateway, Response):
        return gateway
    host = request.path_params["host"]
    try:
        since, until, step = _params(request.query_params, time.time())
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    if not gateway.presence.knows(host) and not await gateway.long_history.stored(host):
        return error(404, "not_found", f"no host named {host[:80]!r} is known or has history")
    try:
        body = await gateway.long_history.host(host, since, until, step)
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    return Response(body, media_type="application/json")


async def fleet_history(request: Request) -> Response:
    gateway = await _reader(request)
    if isinstance(gateway, Response):
        return gateway
    try:
        since, until, step = _params(request.query_params, time.time())
        known = gateway.presence.snapshot()
        targets = request.query_params.get("targets")
        hosts = select_hosts(targets, known) if targets else [h.host for h in known]
        body = await gateway.long_history.fleet(hosts, since, until, step)
    except TargetError as exc:
        return error(400, "bad_request", f"targets: {exc}")
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    return JSONResponse(body)


def _answering(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BrokerUnavailable:
            return error(503, "unavailable", "the broker is unreachable; try again shortly")

    return wrapped


routes = [
    Route("/api/hosts/{host:str}/history", _answering(host_history), methods=["GET"]),
    Route("/api/fleet/history", _answering(fleet_history), methods=["GET"]),
]
