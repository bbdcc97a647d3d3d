"""Run the app under uvicorn with fleetdeck's WebSocket limits."""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette

from .settings import GatewaySettings
from .ws.endpoint import MAX_FRAME_BYTES
from .ws.serverprotocol import protocol_with


def uvicorn_config(app: Starlette, settings: GatewaySettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws=protocol_with(settings.ws_send_buffer),
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=True,
        server_header=False,
    )
