"""`fleetdeck token add|list|remove|rotate`: manage the gateway's token file.

Tokens go to stdout (once; only their hashes are kept), everything else to stderr, so
`TOKEN=$(fleetdeck token add ...)` works. Removing and rotating replace the file atomically; the
gateways reading it close the sessions of the old token within seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fleetdeck_common.scope import parse_scope
from fleetdeck_gateway.auth.identity import Identity
from fleetdeck_gateway.auth.tokenedit import add_token, remove_token, rotate_token
from fleetdeck_gateway.auth.tokenfile import TokenFileError, read_token_file

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIFETIME = 10 * 365 * 86400


def parse_duration(text: str) -> int | None:
    """`90m`, `12h`, `30d`, `2w` -> seconds; `never` -> None."""
    if text.strip().lower() == "never":
        return None
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90m, 12h, 30d or 2w (or never)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= MAX_LIFETIME:
        raise argparse.ArgumentTypeError(f"{text!r}: a token lives more than 0 and at most 10 years")
    return seconds


def _file_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=os.environ.get("FLEETDECK_TOKENS_FILE"),
        required="FLEETDECK_TOKENS_FILE" not in os.environ,
        help=f"token file {what} [env FLEETDECK_TOKENS_FILE]",
    )


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
    _file_argument(add, "to append to (created 0600 if missing)")
    add.add_argument(
        "--expires",
        type=parse_duration,
        metavar="DURATION",
        help="the token stops working after this long: 90m, 12h, 30d, 2w (default: never)",
    )
    add.add_argument(
        "--targets",
        metavar="EXPR",
        help="the token may only run commands inside this target expression (on top of the "
        "gateway's allowlist), e.g. '10.0.0.0/24,web[01-20]'",
    )

    listing = token.add_parser("list", help="show each token's name, role, expiry and targets (no hashes)")
    _file_argument(listing, "to read")

    remove = token.add_parser("remove", help="revoke a token: its open sessions are closed within seconds")
    remove.add_argument("name")
    _file_argument(remove, "to edit")

    rotate = token.add_parser(
        "rotate", help="replace a token with a new one (printed once); the old one stops working"
    )
    rotate.add_argument("name")
    _file_argument(rotate, "to edit")
    rotate.add_argument(
        "--expires",
        type=parse_duration,
        default=argparse.SUPPRESS,  # absent: keep the old expiry
        metavar="DURATION",
        help="lifetime of the new token from now: 90m, 12h, 30d, 2w or never (default: the old expiry)",
    )


def run_token_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    action: str = args.action
    try:
        if action == "add":
            return _add(args)
        if action == "list":
            return _list(args.file)
        if action == "remove":
            count = remove_token(args.file, args.name)
            lines = "its line" if count == 1 else f"its {count} lines"
            print(
                f"removed {args.name} ({lines}) from {args.file}; gateways reading it close "
                "the token's open sessions within seconds",
                file=sys.stderr,
            )
            return 0
        return _rotate(args)
    except (TokenFileError, OSError) as exc:
        parser.exit(2, f"fleetdeck token {action}: {exc}\n")


def _expiry(lifetime: int | None) -> int | None:
    return None if lifetime is None else int(time.time()) + lifetime


def _add(args: argparse.Namespace) -> int:
    token = add_token(args.file, args.name, args.role, _expiry(args.expires), args.targets)
    print(token)
    limits = "".join(
        [
            f", expires {_when(_expiry(args.expires))}" if args.expires is not None else "",
            f", only on {parse_scope(args.targets).expression}" if args.targets is not None else "",
        ]
    )
    print(
        f"added {args.name} ({args.role}{limits}) to {args.file}; the token is shown only once",
        file=sys.stderr,
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    expires: int | Literal["keep"] | None = _expiry(args.expires) if "expires" in vars(args) else "keep"
    token, identity = rotate_token(args.file, args.name, expires)
    print(token)
    print(
        f"rotated {args.name}'s token in {args.file} (expires {_when(identity.expires)}); the old one "
        "stops working at once and its open sessions close within seconds; the new one is shown only once",
        file=sys.stderr,
    )
    return 0


def _when(expires: int | None, now: float | None = None) -> str:
    if expires is None:
        return "never"
    moment = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    left = expires - (time.time() if now is None else now)
    if left <= 0:
        return f"{moment} (expired {_span(-left)} ago)"
    return f"{moment} (in {_span(left)})"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 1)}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h {minutes % 60}m"
    return f"{hours // 24}d {hours % 24}h"


def format_table(identities: list[Identity], now: float | None = None) -> list[str]:
    """One row per token: name, role, expiry (and whether it has passed), targets. Never a hash."""
    rows = [("NAME", "ROLE", "EXPIRES", "TARGETS")]
    rows += [(i.name, i.role, _when(i.expires, now), i.scope or "(all allowed targets)") for i in identities]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]


def _list(path: Path) -> int:
    identities, errors = read_token_file(path)
    for line in format_table(identities):
        print(line)
    for error in errors:
        print(f"bad line, its token is refused: {error}", file=sys.stderr)
    return 1 if errors else 0
