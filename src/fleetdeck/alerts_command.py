"""`fleetdeck alerts ...`: `check FILE` validates an alert rules file, as the gateway does at start."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fleetdeck_common.alerts.rules import RulesError
from fleetdeck_common.alerts.rulesfile import load_rules


def add_alerts_command(commands: Any) -> Any:
    """The `alerts` command and its subcommands' parsers (others add theirs to what this returns)."""
    alerts = commands.add_parser(
        "alerts",
        help="alert rules and what fires",
        description="Alert rules (FLEETDECK_ALERT_RULES) and the alerts they raise.",
    )
    actions = alerts.add_subparsers(dest="alerts_command", required=True)
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


def run_alerts_command(args: argparse.Namespace) -> int:
    if args.alerts_command == "check":
        return check_rules(args.file)
    raise AssertionError(f"no such alerts command {args.alerts_command!r}")
