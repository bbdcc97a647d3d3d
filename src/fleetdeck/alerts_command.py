"""`fleetdeck alerts ...`: what fires (through a gateway), `silence` some of it, and `check FILE`
validating an alert rules file as the gateway does at start."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fleetdeck_common.alerts.rules import RulesError
from fleetdeck_common.alerts.rulesfile import load_rules

from .alerts_client import list_alerts, silence

DEFAULT_URL = "http://127.0.0.1:8000"


def _gateway_arguments(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--url and --token, taken before or after the subcommand (the subcommand's keep the others)."""
    url = os.environ.get("FLEETDECK_URL", DEFAULT_URL) if defaults else argparse.SUPPRESS
    token = os.environ.get("FLEETDECK_TOKEN") if defaults else argparse.SUPPRESS
    parser.add_argument("--url", default=url, help=f"gateway URL [env FLEETDECK_URL; default {DEFAULT_URL}]")
    parser.add_argument("--token", default=token, help="access token [env FLEETDECK_TOKEN]")


def add_alerts_command(commands: Any) -> Any:
    """The `alerts` command and its subcommands' parsers (others add theirs to what this returns)."""
    alerts = commands.add_parser(
        "alerts",
        help="what fires now; silence alerts; check a rules file",
        description="Without a subcommand: the alerts firing now, worst first (any token). Exit 0, "
        "2 if the gateway refuses, 3 if it cannot be reached.",
    )
    alerts.add_argument("--json", action="store_true", help="the gateway's answer as JSON")
    _gateway_arguments(alerts, defaults=True)
    actions = alerts.add_subparsers(dest="alerts_command")
    mute = actions.add_parser(
        "silence",
        help="silence a rule's alerts (and/or a target expression's) for a while (operator token)",
        description="Silence alerts until a time, with a comment: a silenced alert still shows, "
        "marked silenced, and is not sent to the webhook or Alertmanager.",
    )
    mute.add_argument("rule", nargs="?", help="the rule to silence (default: every rule, given --targets)")
    mute.add_argument("--targets", metavar="EXPR", help="only these hosts (a target expression)")
    until = mute.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", metavar="DURATION", help="how long, like 30m, 2h, 7d")
    until.add_argument(
        "--until", metavar="WHEN", help="until then: unix seconds or ISO 8601 (UTC unless a zone)"
    )
    mute.add_argument("--comment", required=True, help="why: shown beside the silence and in the audit trail")
    _gateway_arguments(mute, defaults=False)
    check = actions.add_parser(
        "check",
        help="validate an alert rules file",
        description="Validate an alert rules file the way the gateway does at start: exit 0 and say "
        "how many rules it holds, or exit 2 with the rule and field that is wrong.",
    )
    check.add_argument("file", type=Path, help="the rules file (YAML)")
    return actions


def check_rules(path: Path) -> int:
    """`fleetdeck alerts check FILE`: 0 with the count of rules, or 2 with what is wrong."""
    try:
        rules = load_rules(path)
    except RulesError as exc:
        print(f"fleetdeck alerts check: {exc}", file=sys.stderr)
        return 2
    print(f"{len(rules)} rule{'' if len(rules) == 1 else 's'} ok")
    return 0


def run_alerts_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.alerts_command == "check":
        return check_rules(args.file)
    if not args.token:
        parser.error("alerts needs --token or FLEETDECK_TOKEN")
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    if args.alerts_command is None:
        return list_alerts(args.url, args.token, args.json)
    if args.alerts_command == "silence":
        if args.rule is None and args.targets is None:
            parser.error("alerts silence needs a RULE, --targets or both")
        request = {"rule": args.rule, "targets": args.targets, "comment": args.comment}
        request.update({"for": args.duration} if args.duration else {"until": _until(args.until)})
        return silence(args.url, args.token, {k: v for k, v in request.items() if v is not None})
    raise AssertionError(f"no such alerts command {args.alerts_command!r}")


def _until(text: str) -> float | str:
    """Unix seconds as a number; anything else goes as written (the gateway reads ISO 8601)."""
    try:
        return float(text)
    except ValueError:
        return text
