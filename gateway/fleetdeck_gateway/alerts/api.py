"""`GET /api/alerts`, `GET /api/alerts/rules`, and silences: `GET`/`POST /api/alerts/silences`,
`DELETE /api/alerts/silences/{id}`. Any viewer may read; silencing needs the operator role."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..api import _body, _caller, _unavailable
from ..state import Gateway
from .silences import SilenceRequest


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def alerts(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse(_gateway(request).alerts.summary())


async def rules(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse(_gateway(request).alerts.rules())


async def list_silences(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse({"silences": _gateway(request).alerts.silences()})


async def add_silence(request: Request) -> Response:
    caller = await _caller(request)  # the service checks the role, so a refusal is audited
    if isinstance(caller, Response):
        return caller
    body: SilenceRequest = await _body(request, SilenceRequest)
    made = await _gateway(request).alerts.silence(caller, body)
    return JSONResponse(made.listed(made.created), status_code=201)


async def expire_silence(request: Request) -> Response:
    caller = await _caller(request)  # the service checks the role, so a refusal is audited
    if isinstance(caller, Response):
        return caller
    expired = await _gateway(request).alerts.unsilence(caller, request.path_params["silence"])
    return JSONResponse(expired.listed(expired.until))


routes = [
    Route("/api/alerts", _unavailable(alerts), methods=["GET"]),
    Route("/api/alerts/rules", _unavailable(rules), methods=["GET"]),
    Route("/api/alerts/silences", _unavailable(list_silences), methods=["GET"]),
    Route("/api/alerts/silences", _unavailable(add_silence), methods=["POST"]),
    Route("/api/alerts/silences/{silence:str}", _unavailable(expire_silence), methods=["DELETE"]),
]
