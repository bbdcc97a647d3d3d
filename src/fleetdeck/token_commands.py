"""`fleetdeck token ...`: manage the gateway's token file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fleetdeck_gateway.tokens import TokenFileError, add_token


def add_token_commands(commands: Any) -> None:
    """Add `token` and its actions to the `fleetdeck` command's subparsers."""
    token = commands.add_parser("token", help="manage access tokens").add_subparsers(
        dest="action", required=True
    )
    add = token.add_parser("add", help="create a token, print it once, store only its hash")
    add.add_argument("name", help="who the token is for (shown as the user)")
    add.add_argument(
        "--role",
        choices=["viewer", "operator"],
        required=True,
        help="viewer watches; operator also runs and cancels commands",
    )
    add.add_argument(
        "--file",
        type=Path,
        default=os.environ.get("FLEETDECK_TOKENS_FILE"),
        required="FLEETDECK_TOKENS_FILE" not in os.environ,
        help="token file to append to [env FLEETDECK_TOKENS_FILE]",
    )


def run_token_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        token = add_token(args.file, args.name, args.role)
    except (TokenFileError, OSError) as exc:
        parser.exit(2, f"fleetdeck token add: {exc}\n")
    print(token)
    print(
        f"added {args.name} ({args.role}) to {args.file}; the token is shown only once",
        file=sys.stderr,
    )
    return 0
