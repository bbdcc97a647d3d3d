"""`GET /api/terms` (recent terminal sessions) and `GET /api/terms/{id}/cast` (one recording,
asciicast v2): operators only, like the terminals themselves."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import TERM_ID_PATTERN

from ..api import _caller, error
from ..state import Gateway

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CAST_TYPE = "application/x-asciicast"


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def list_terms(request: Request) -> Response:
    caller = await _caller(request, operator=True)
    if isinstance(caller, Response):
        return caller
    raw = request.query_params.get("limit") or str(DEFAULT_LIMIT)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return error(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    try:
        store = _gateway(request).terms.store
        records = await store.recent(int(raw))
    except BrokerUnavailable:
        return error(503, "unavailable", "the broker is unreachable; try again")
    return JSONResponse({"terms": [record.model_dump() for record in records]})


async def cast(request: Request) -> Response:
    caller = await _caller(request, operator=True)
    if isinstance(caller, Response):
        return caller
    term = request.path_params["term"]
    if not re.match(TERM_ID_PATTERN, term):
        return error(400, "bad_request", "a terminal id is 1-64 letters, digits, '-' or '_'")
    try:
        store = _gateway(request).terms.store
        lines = await store.cast(term)
    except BrokerUnavailable:
        return error(503, "unavailable", "the broker is unreachable; try again")
    if not lines:
        return error(
            404,
            "not_found",
            f"no recording of terminal {term!r} (never opened, or older than FLEETDECK_TERM_KEEP)",
        )
    return Response("\n".join(lines) + "\n", media_type=CAST_TYPE)


routes = [
    Route("/api/terms", list_terms, methods=["GET"]),
    Route("/api/terms/{term}/cast", cast, methods=["GET"]),
]
