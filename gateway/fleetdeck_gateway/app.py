"""The gateway application: routes and lifespan only."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from fleetdeck_common.broker import Broker, BrokerUnavailable, create_broker

from . import api, uploads
from .alerts import api as alerts_api
from .auth.peer import PeerMiddleware
from .auth.tokenstore import TokenStore
from .build import build_gateway
from .history import api as history_api
from .settings import GatewaySettings
from .state import Gateway
from .terms import api as terms_api
from .ws.endpoint import websocket_endpoint

logger = logging.getLogger(__name__)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # Scripts only from our own origin; ECharts and xterm.js set inline styles.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# Served instead of the dashboard while the broker does not answer: a clear page, never a 500.
BROKER_AWAY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>fleetdeck: broker unreachable</title></head>
<body style="font-family: sans-serif; background: #0d1117; color: #c9d1d9; padding: 2em">
<h1>fleetdeck cannot reach its broker</h1>
<p>The gateway is running, but Redis does not answer, so it cannot check your session or show the
fleet. This page tries again every 5 seconds. Running jobs continue on the workers, and their
results are kept for you.</p>
</body></html>
"""


def find_web_dir(configured: Path | None) -> Path:
    if configured is not None:
        return configured
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "web"
        if (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError("dashboard files not found; set FLEETDECK_WEB_DIR")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if await gateway.broker.ping():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "broker unreachable", "reason": gateway.broker.down_reason}, status_code=503
    )


async def metrics(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    gateway.metrics.set_alerts_firing(gateway.alerts.firing_counts())
    return Response(gateway.metrics.render(gateway.clients.queued_bytes()), media_type=CONTENT_TYPE_LATEST)


def create_app(
    settings: GatewaySettings,
    broker: Broker | None = None,
    tokens: TokenStore | None = None,
    login_clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ASGI app; pass a broker to share one (as `fleetdeck up` does), else one is made from
    settings. `login_clock` times the failed-login throttle (tests drive it)."""
    owns_broker = broker is None
    the_broker = broker or create_broker(
        settings.redis_url, settings.redis_connections, settings.broker_timeout
    )
    gateway = build_gateway(settings, the_broker, tokens or TokenStore(settings.tokens_file), login_clock)
    web = find_web_dir(settings.web_dir)

    async def index(request: Request) -> Response:
        try:
            identity, _ = await gateway.auth.identify(request)
        except BrokerUnavailable:
            return HTMLResponse(
                BROKER_AWAY_PAGE, status_code=503, headers=PAGE_HEADERS | {"Retry-After": "5"}
            )
        if identity is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(web / "index.html", headers=PAGE_HEADERS)

    async def favicon(request: Request) -> Response:
        # Browsers ask for /favicon.ico on their own; answer with the SVG rather than a 404.
        return FileResponse(web / "favicon.svg", media_type="image/svg+xml")

    async def login_page(request: Request) -> Response:
        return FileResponse(web / "login.html", headers=PAGE_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owns_broker:
            await the_broker.connect()
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()
            if owns_broker:
                await the_broker.disconnect()

    routes = [
        Route("/", index),
        Route("/login", login_page),
        Route("/favicon.ico", favicon),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        WebSocketRoute("/ws", websocket_endpoint),
        *api.routes,
        *uploads.routes,
        *history_api.routes,
        *alerts_api.routes,
        *terms_api.routes,
        Mount("/static", StaticFiles(directory=web), name="static"),
    ]
    # PeerMiddleware: every request and socket knows its client's address (for the audit trail).
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(PeerMiddleware)])
    app.state.gateway = gateway
    return app
