"""The HTTP API: login/logout, hosts, jobs. Same token rules as /ws; 401 without, 403 without the role."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import (
    ExecRequest,
    ProtocolError,
    describe_validation_error,
    is_job_id,
    protocol_description,
)

from .auth import SESSION_COOKIE
from .state import Gateway
from .tokens import Identity

MAX_BODY_BYTES = 64 * 1024
_STATUS = {
    "forbidden": 403,
    "not_found": 404,
    "invalid_targets": 422,
    "bad_request": 400,
    "unavailable": 503,
}


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=512)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ProtocolError("bad_request", "request body larger than 64 KiB")
    try:
        return model.model_validate(json.loads(raw or b"null"))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise ProtocolError("bad_request", describe_validation_error(exc)) from None
        raise ProtocolError("bad_request", "body must be a JSON object") from None


async def _caller(request: Request, operator: bool = False) -> Identity | Response:
    gateway = _gateway(request)
    identity, from_cookie = await gateway.auth.identify(request)
    if identity is None:
        return error(401, "unauthorized", "a valid token (Bearer) or session cookie is needed")
    if from_cookie and request.method != "GET" and not gateway.auth.origin_allowed(request):
        return error(403, "forbidden", "request from an origin that is not allowed")
    if operator and not identity.is_operator:
        return error(403, "forbidden", "this needs the operator role")
    return identity


def _problem(exc: ProtocolError) -> JSONResponse:
    return error(_STATUS.get(exc.code, 400), exc.code, exc.message)


async def login(request: Request) -> Response:
    gateway = _gateway(request)
    if not gateway.auth.origin_allowed(request):
        return error(403, "forbidden", "login from an origin that is not allowed")
    try:
        body: LoginBody = await _body(request, LoginBody)
    except ProtocolError as exc:
        return _problem(exc)
    identity = gateway.auth.tokens.verify(body.token)
    if identity is None:
        return error(401, "unauthorized", "unknown token")
    session = await gateway.auth.sessions.open(identity)
    response = JSONResponse({"user": identity.name, "role": identity.role})
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=gateway.auth.sessions.lifetime(identity),
        httponly=True,
        samesite="strict",
        secure=gateway.settings.secure_cookies,
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        await _gateway(request).auth.sessions.close(session)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse({"user": caller.name, "role": caller.role})


async def hosts(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse({"hosts": [h.model_dump() for h in _gateway(request).relay.presence.snapshot()]})


async def workers(request: Request) -> Response:
    """The exec workers alive now: an empty list means jobs wait in the queue until they expire."""
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    alive = _gateway(request).queue.workers
    return JSONResponse(
        {"alive": len(alive), "workers": [{"name": w.name, "seen": w.seen, "jobs": w.jobs} for w in alive]}
    )


async def protocol(request: Request) -> Response:
    """The protocol's values (statuses, states, limits), so clients need not copy them."""
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    return JSONResponse(protocol_description())


async def submit_job(request: Request) -> Response:
    caller = await _caller(request, operator=True)
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    try:
        body: ExecRequest = await _body(request, ExecRequest)
        job = await gateway.jobs.submit(caller, body)
    except ProtocolError as exc:
        return _problem(exc)
    gateway.metrics.jobs_submitted.inc()
    return JSONResponse({"job": job.job, "hosts": job.hosts}, status_code=202)


async def list_jobs(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    jobs = await _gateway(request).jobs.recent(100)
    return JSONResponse({"jobs": [job.model_dump(exclude={"type", "ref"}) for job in jobs]})


async def get_job(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    job_id = request.path_params["job_id"]
    if not is_job_id(job_id):
        return error(404, "not_found", "no such job")
    try:
        job = await gateway.jobs.get(job_id)
    except ProtocolError as exc:
        return _problem(exc)
    stored = await gateway.jobs.results(job.job)
    body = job.model_dump(exclude={"type", "ref"})
    body["results"] = [r.model_dump() for r in stored.results]
    if stored.done is not None:
        body["summary"] = stored.done.summary
        body["groups"] = [g.model_dump() for g in stored.done.groups]
        body["duration_ms"] = stored.done.duration_ms
    return JSONResponse(body)


def _unavailable(handler: Any) -> Any:
    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except BrokerUnavailable:
            return error(503, "unavailable", "the broker is unreachable; try again shortly")
        return response

    return wrapped


routes = [
    Route("/api/login", _unavailable(login), methods=["POST"]),
    Route("/api/logout", _unavailable(logout), methods=["POST"]),
    Route("/api/me", _unavailable(me), methods=["GET"]),
    Route("/api/hosts", _unavailable(hosts), methods=["GET"]),
    Route("/api/protocol", _unavailable(protocol), methods=["GET"]),
    Route("/api/workers", _unavailable(workers), methods=["GET"]),
    Route("/api/jobs", _unavailable(submit_job), methods=["POST"]),
    Route("/api/jobs", _unavailable(list_jobs), methods=["GET"]),
    Route("/api/jobs/{job_id:str}", _unavailable(get_job), methods=["GET"]),
]
