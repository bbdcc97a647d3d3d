"""`fleetdeck-gateway`: the dashboard, /ws and the HTTP API under uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from fleetdeck_common.alerts.rules import RulesError
from fleetdeck_common.alerts.rulesfile import load_rules
from fleetdeck_common.cli import parse_settings
from fleetdeck_common.logs import SHOWS_SECRET, setup_logging

from .app import create_app
from .auth.tokenfile import TokenFileError
from .auth.tokenstore import TokenStore
from .server import uvicorn_config
from .settings import GatewaySettings

logger = logging.getLogger("fleetdeck_gateway")


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        GatewaySettings,
        "fleetdeck-gateway",
        "Serve the fleetdeck dashboard, /ws and the HTTP API.",
        argv,
    )
    setup_logging(settings.log_level, settings.log_json)
    if settings.alert_rules is not None:
        try:
            load_rules(settings.alert_rules)
        except RulesError as exc:
            sys.exit(f"fleetdeck-gateway: FLEETDECK_ALERT_RULES: {exc}")
    try:
        tokens = TokenStore(settings.tokens_file)
    except TokenFileError as exc:
        sys.exit(f"fleetdeck-gateway: {exc}")
    if tokens.generated_token:
        logger.warning("no FLEETDECK_TOKENS_FILE: generated an operator token for this run")
        logger.warning("log in at %s", settings.login_url(tokens.generated_token), extra={SHOWS_SECRET: True})
    app = create_app(settings, tokens=tokens)
    uvicorn.Server(uvicorn_config(app, settings)).run()


if __name__ == "__main__":
    main()
