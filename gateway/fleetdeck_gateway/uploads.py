"""`POST /api/files`: an operator uploads a file (the raw body) for copy jobs; 201 with its id."""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleetdeck_common.filestore import UploadRefused

from .api import _caller, _gateway, _unavailable, error

logger = logging.getLogger(__name__)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` bytes (the rest is never buffered)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def upload(request: Request) -> Response:
    caller = await _caller(request, operator=True)
    if isinstance(caller, Response):
        return caller
    gateway = _gateway(request)
    limit = gateway.settings.max_upload
    try:
        data = await _read_capped(request, limit)
    except ClientDisconnect:
        return error(400, "bad_request", "the upload ended before its body was complete")
    if data is None:
        return error(
            413,
            "too_large",
            f"the file is larger than the upload limit of {limit} bytes (FLEETDECK_MAX_UPLOAD)",
        )
    try:
        info = await gateway.files.put(data, caller.name, time.time(), gateway.settings.max_uploads_total)
    except UploadRefused as exc:
        return error(507, "insufficient_storage", str(exc))
    logger.info("file %s uploaded by %s: %d bytes", info.file, caller.name, info.size)
    return JSONResponse({"file": info.file, "size": info.size, "sha256": info.sha256}, status_code=201)


routes = [Route("/api/files", _unavailable(upload), methods=["POST"])]
