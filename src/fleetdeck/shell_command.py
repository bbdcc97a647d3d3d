"""`fleetdeck shell HOST`'s arguments and exit codes, kept apart from the client (shell_client.py)
so the `fleetdeck` command loads without websockets in images that do not install it."""

from __future__ import annotations

import os
from typing import Any

from .exit_codes import EXIT_ENDED, EXIT_REFUSED, EXIT_UNREACHABLE


def add_shell_command(commands: Any) -> None:
    shell = commands.add_parser(
        "shell",
        help="open a terminal on one host through a gateway",
        description="Open an interactive terminal on HOST through a gateway (the exec worker logs in "
        "over SSH; you need only reach the gateway). Exits with the remote shell's exit status; "
        f"{EXIT_REFUSED} if the gateway refused, {EXIT_UNREACHABLE} if it cannot be reached, "
        f"{EXIT_ENDED} if the session ended without an exit status (the reason is printed).",
    )
    shell.add_argument("host", help="one host: a name from the fleet, an address, or a one-host term")
    shell.add_argument(
        "--url",
        default=os.environ.get("FLEETDECK_URL", "http://127.0.0.1:8000"),
        help="gateway URL [env FLEETDECK_URL; default http://127.0.0.1:8000]",
    )
    shell.add_argument(
        "--token", default=os.environ.get("FLEETDECK_TOKEN"), help="operator token [env FLEETDECK_TOKEN]"
    )
