"""`fleetdeck audit`: print the gateway's audit trail, newest first, through `GET /api/audit`.

One line per entry (or `--json`: the API's entries as JSON lines). Exit 0, 2 when the gateway
refuses (not an operator's token, a bad `--since`), 3 when it cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fleetdeck_common.audit import SINCE_FORMS, parse_since
from fleetdeck_common.auditstore import MAX_PAGE

from .exit_codes import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE

DEFAULT_LIMIT = 1000


class AuditError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_audit_command(commands: Any) -> None:
    """Add `audit` to the `fleetdeck` command's subparsers."""
    audit = commands.add_parser(
        "audit",
        help="print the audit trail (operator token)",
        description="Print who ran, cancelled, logged in or out, from where and with what outcome, "
        "newest first. Exit 0, 2 if the gateway refuses, 3 if it cannot be reached.",
    )
    audit.add_argument(
        "--since",
        metavar="WHEN",
        help=f"only entries from then on: {SINCE_FORMS} (default: as far back as kept)",
    )
    audit.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"print at most N entries, 0 for all (default {DEFAULT_LIMIT})",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per entry, as the API gives it")
    audit.add_argument(
        "--url",
        default=os.environ.get("FLEETDECK_URL", "http://127.0.0.1:8000"),
        help="gateway URL [env FLEETDECK_URL; default http://127.0.0.1:8000]",
    )
    audit.add_argument(
        "--token", default=os.environ.get("FLEETDECK_TOKEN"), help="operator token [env FLEETDECK_TOKEN]"
    )


def run_audit_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.token:
        parser.error("audit needs --token or FLEETDECK_TOKEN")
    if args.limit < 0:
        parser.error("--limit must be 0 or more")
    if args.since is not None:
        try:
            parse_since(args.since, time.time())
        except ValueError as exc:
            parser.error(str(exc))
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    colour = sys.stdout.isatty() and not args.json
    try:
        for entry in entries(args.url, args.token, args.since, args.limit):
            print(json.dumps(entry) if args.json else format_entry(entry, colour), flush=True)
    except AuditError as exc:
        print(f"fleetdeck audit: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `fleetdeck audit | head`
        return EXIT_OK
    return EXIT_OK


def entries(url: str, token: str, since: str | None, limit: int) -> Iterator[dict[str, Any]]:
    """Every entry (up to `limit`, 0 for all) from the newest back to `since`, page by page."""
    before: str | None = None
    left = limit or None
    while True:
        query = {"limit": str(min(MAX_PAGE, left or MAX_PAGE))}
        if since is not None:
            query["since"] = since
        if before is not None:
            query["before"] = before
        page = _get(f"{url.rstrip('/')}/api/audit?{urllib.parse.urlencode(query)}", token)
        for entry in page["entries"]:
            yield entry
            if left is not None:
                left -= 1
                if left == 0:
                    return
        before = page.get("next")
        if before is None:
            return
        if page.get("since") is not None:
            since = str(page["since"])  # the gateway's reading of a relative --since, kept for every page


def _get(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 (http(s) checked)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        code = EXIT_REFUSED if exc.code in (400, 401, 403) else EXIT_UNREACHABLE
        raise AuditError(f"the gateway answered {exc.code}: {message}", code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AuditError(
            f"cannot reach the gateway at {url.split('/api/', maxsplit=1)[0]}: {exc}", EXIT_UNREACHABLE
        ) from None


def _printable(text: str) -> str:
    """What hosts and people typed must not drive the terminal: escape control characters."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _details(entry: dict[str, Any]) -> str:
    action, outcome = entry.get("action"), entry.get("outcome")
    parts: list[str] = []
    if entry.get("job"):
        owner = f" of {entry['owner']}" if entry.get("owner") and action == "cancel" else ""
        parts.append(f"job {entry['job']}{owner}")
    if entry.get("silence") or entry.get("rule"):
        until = f" until {_when(float(entry['until']))}" if entry.get("until") is not None else ""
        rule = f" of rule {entry['rule']}" if entry.get("rule") else ""
        parts.append(f"silence {entry.get('silence') or '-'}{rule}{until}")
    if entry.get("rules") is not None:
        parts.append(f"{entry['rules']} rules")
    if entry.get("comment"):
        parts.append(f"({entry['comment']})")
    if entry.get("code") or entry.get("reason"):
        parts.append(": ".join(str(entry[k]) for k in ("code", "reason") if entry.get(k)))
    if action == "exec" or entry.get("targets"):
        where = entry.get("host_set") or entry.get("targets") or ""
        count = f" ({entry['hosts']} hosts)" if entry.get("hosts") is not None else ""
        timeout = f", timeout {entry['timeout']:g}s" if entry.get("timeout") is not None else ""
        parts.append(f"on {where}{count}{timeout}")
    if entry.get("suppressed"):
        parts.append(f"{entry['suppressed']} more failed logins not listed")
    line = "; ".join(parts)
    if entry.get("command") is not None:
        line += f"  $ {entry['command']}"
    return f"{action} {outcome}  {line}".rstrip()


def format_entry(entry: dict[str, Any], colour: bool = False) -> str:
    """One entry on one line: when (UTC), who, from where, what, and what came of it."""
    who = f"{entry['user']} ({entry.get('role', '?')})" if entry.get("user") else "-"
    line = f"{_when(float(entry['ts']))}  {who:<20} {entry.get('address') or '-':<15}  {_details(entry)}"
    line = _printable(line)
    if colour and entry.get("outcome") == "refused":
        return f"\x1b[31m{line}\x1b[0m"
    return line
