"""The HTTP API: login/logout, hosts, jobs, the audit trail, the fleet for Prometheus. Same token
rules as /ws; 401 without, 403 without the role."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
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

from .auth.authenticator import SESSION_COOKIE
from .auth.identity import Identity
from .auth.peer import address_of
from .fleetexport import exposition
from .services.audittrail import AuditQuery
from .state import Gateway

MAX_BODY_BYTES = 64 * 1024
_STATUS = {"forbidden": 403, "not_found": 404, "invalid_targets": 422, "bad_request": 400, "unavailable": 503}


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
    """A session cookie for a valid token. Failed logins are logged, audited and throttled per
    address (`loginguard`): a throttled address gets 429 before its token is looked at."""
    gateway = _gateway(request)
    if not gateway.auth.origin_allowed(request):
        return error(403, "forbidden", "login from an origin that is not allowed")
    try:
        body: LoginBody = await _body(request, LoginBody)
    except ProtocolError as exc:
        return _problem(exc)
    # From the throttle's check to counting a failure nothing awaits, so requests sent at once
    # from one address cannot all pass the check before the first failure counts.
    address, throttle = address_of(request.scope), gateway.login_throttle
    wait = throttle.retry_after(address)
    if wait is not None:
        response = error(429, "rate_limited", f"too many failed logins from {address}; try again in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response
    identity = gateway.tokens.verify(body.token)
    if identity is None:
        throttle.failed(address)
        await gateway.audit.login_failed(address, throttle.audit_failure(), throttle.retry_after(address))
        return error(401, "unauthorized", "unknown token")
    session = await gateway.sessions.open(identity)
    await gateway.audit.login(identity)
    response = JSONResponse({"user": identity.name, "role": identity.role})
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=gateway.sessions.lifetime(identity),
        httponly=True,
        samesite="strict",
        secure=gateway.settings.secure_cookies,
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """End the session. Checks Origin like every cookie-authenticated POST: a page on another
    origin cannot log anybody out."""
    gateway = _gateway(request)
    if not gateway.auth.origin_allowed(request):
        return error(403, "forbidden", "logout from an origin that is not allowed")
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        identity = await gateway.sessions.find(session)
        await gateway.sessions.close(session)
        if identity is not None:
            await gateway.audit.logout(identity)
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
    return JSONResponse({"hosts": [h.model_dump() for h in _gateway(request).presence.snapshot()]})


async def host(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    name = request.path_params["host"]
    found = _gateway(request).presence.detail(name)
    if found is None:
        return error(404, "not_found", f"no host named {name!r} is known")
    entry, mounts = found
    return JSONResponse(entry.model_dump() | {"mounts": [m.model_dump() for m in mounts]})


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
    caller = await _caller(request)  # the job service refuses viewers, and audits the attempt
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    try:
        body: ExecRequest = await _body(request, ExecRequest)
        job = await gateway.jobs.submit(caller, body)
    except ProtocolError as exc:
        return _problem(exc)
    return JSONResponse({"job": job.job, "hosts": job.hosts}, status_code=202)


async def list_jobs(request: Request) -> Response:
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    query = request.query_params  # `since`/`until`: the jobs of a chart's range, not only the last 100
    jobs = await _gateway(request).jobs.listed(100, query.get("host"), query.get("since"), query.get("until"))
    return JSONResponse({"jobs": jobs})


JOB_PAGE_DEFAULT = 100  # results per GET /api/jobs/{id} unless `limit` says otherwise
JOB_PAGE_MAX = 1000
JOB_PAGE_MAX_CHARS = 2 * 1024 * 1024  # results in one answer stop about here (at least one is sent)


def _page_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        raise ProtocolError("bad_request", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def get_job(request: Request) -> Response:
    """The job and a page of its results: `?after=SEQ&limit=N` (default 0 and 100); `next` is the
    `after` of the next page, null once this page reaches the last result stored."""
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    job_id = request.path_params["job_id"]
    if not is_job_id(job_id):
        return error(404, "not_found", "no such job")
    try:
        after = _page_param(request, "after", 0, 0, 10**9)
        limit = _page_param(request, "limit", JOB_PAGE_DEFAULT, 1, JOB_PAGE_MAX)
        job = await gateway.jobs.get(job_id)
    except ProtocolError as exc:
        return _problem(exc)
    page = await gateway.jobs.results_after(job.job, after, limit, JOB_PAGE_MAX_CHARS)
    body = job.model_dump(exclude={"type", "ref"})
    body["results"] = [r.model_dump() for r in page.results]
    body["next"] = page.next_after
    if page.done is not None:
        body["summary"] = page.done.summary
        body["groups"] = [g.model_dump() for g in page.done.groups]
        body["duration_ms"] = page.done.duration_ms
    return JSONResponse(body)


async def audit_trail(request: Request) -> Response:
    """The audit trail, newest first: `?before=ID&limit=N&since=...` (operators only)."""
    caller = await _caller(request, operator=True)
    if isinstance(caller, Response):
        return caller
    try:
        query = AuditQuery.parse(request.query_params, time.time())
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    page = await _gateway(request).audit.page(query)
    return JSONResponse(
        {
            "entries": [entry.model_dump(exclude_none=True) for entry in page.entries],
            "next": page.next,
            "since": query.since,
        }
    )


async def fleet_metrics(request: Request) -> Response:
    caller = await _caller(request)  # a viewer token, as Prometheus's `authorization` sends it
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    return Response(
        exposition(gateway.presence.snapshot, gateway.fleet.latest), media_type=CONTENT_TYPE_LATEST
    )


def _unavailable(handler: Any) -> Any:
    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except BrokerUnavailable:
            return error(503, "unavailable", "the broker is unreachable; try again shortly")
        except ProtocolError as exc:  # a bad parameter, named in a sentence
            return _problem(exc)
        return response

    return wrapped


routes = [
    Route("/api/login", _unavailable(login), methods=["POST"]),
    Route("/api/logout", _unavailable(logout), methods=["POST"]),
    Route("/api/me", _unavailable(me), methods=["GET"]),
    Route("/api/hosts", _unavailable(hosts), methods=["GET"]),
    Route("/api/hosts/{host:str}", _unavailable(host), methods=["GET"]),
    Route("/api/protocol", _unavailable(protocol), methods=["GET"]),
    Route("/api/workers", _unavailable(workers), methods=["GET"]),
    Route("/api/jobs", _unavailable(submit_job), methods=["POST"]),
    Route("/api/jobs", _unavailable(list_jobs), methods=["GET"]),
    Route("/api/jobs/{job_id:str}", _unavailable(get_job), methods=["GET"]),
    Route("/api/audit", _unavailable(audit_trail), methods=["GET"]),
    Route("/metrics/fleet", _unavailable(fleet_metrics), methods=["GET"]),
]
