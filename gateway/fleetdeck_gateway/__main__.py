"""`fleetdeck-gateway`: the dashboard, /ws and the HTTP API under uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from fleetdeck_common.cli import parse_settings
from fleetdeck_common.logs import setup_logging
from fleetdeck_common.settings import GatewaySettings

from .app import create_app
from .server import uvicorn_config
from .tokens import TokenFileError, TokenStore

logger = logging.getLogger("fleetdeck_gateway")


def login_url(settings: GatewaySettings, token: str) -> str:
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    # In the fragment, so the token never reaches a server log or a Referer header.
    return f"{base.rstrip('/')}/login#token={token}"


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        GatewaySettings,
        "fleetdeck-gateway",
        "Serve the fleetdeck dashboard, /ws and the HTTP API.",
        argv,
    )
    setup_logging(settings.log_level, settings.log_json)
    try:
        tokens = TokenStore(settings.tokens_file)
    except TokenFileError as exc:
        sys.exit(f"fleetdeck-gateway: {exc}")
    if tokens.generated_token:
        logger.warning("no FLEETDECK_TOKENS_FILE: generated an operator token for this run")
        logger.warning("log in at %s", login_url(settings, tokens.generated_token))
    app = create_app(settings, tokens=tokens)
    uvicorn.Server(uvicorn_config(app, settings)).run()


if __name__ == "__main__":
    main()
