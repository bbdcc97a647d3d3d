"""The `fleetdeck` command: `up`, `token add`, `exec`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.cli import add_settings_arguments, load_settings
from fleetdeck_common.logs import setup_logging
from fleetdeck_common.messages import MAX_TIMEOUT_SECONDS
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_gateway.tokens import TokenFileError, TokenStore
from fleetdeck_worker.preflight import check_ssh_setup
from fleetdeck_worker.settings import WorkerSettings

from .exec_client import run_exec
from .token_commands import add_token_commands, run_token_command


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetdeck", description="Watch a fleet live and run commands across it."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up",
        help="gateway + local agent + worker in one process, no Redis",
        description="Run the whole of fleetdeck in one process on the in-memory broker. "
        "The gateway settings below are flags and variables; agent and worker settings "
        "(FLEETDECK_INTERVAL, FLEETDECK_SSH_*, ...) come from the environment.",
    )
    add_settings_arguments(up, GatewaySettings, exclude={"redis_url"})

    add_token_commands(commands)

    run = commands.add_parser(
        "exec",
        help="run a command on hosts through a gateway",
        usage="fleetdeck exec [--url URL] [--token TOKEN] [--timeout SECONDS] [--deadline SECONDS] [--json] "
        "TARGETS -- COMMAND...",
        description="Run COMMAND on every host of TARGETS through a gateway; one line per host as it "
        "finishes, then hosts grouped by identical output. Exit 0 only if every host "
        "succeeded, 1 if any did not, 2 if the gateway refused, 3 if it cannot be reached, "
        "4 if the deadline passed first.",
    )
    run.add_argument("targets", help="target expression, e.g. '10.0.0.1-100,!10.0.0.7'")
    run.add_argument(
        "--url",
        default=os.environ.get("FLEETDECK_URL", "http://127.0.0.1:8000"),
        help="gateway URL [env FLEETDECK_URL; default http://127.0.0.1:8000]",
    )
    run.add_argument(
        "--token",
        default=os.environ.get("FLEETDECK_TOKEN"),
        help="operator token [env FLEETDECK_TOKEN]",
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=os.environ.get("FLEETDECK_EXEC_TIMEOUT", "30"),
        help="seconds the command may run per host [env FLEETDECK_EXEC_TIMEOUT; default 30]",
    )
    run.add_argument(
        "--deadline",
        type=_seconds,
        default=os.environ.get("FLEETDECK_EXEC_DEADLINE"),
        help="give up waiting for the job after this many seconds, exit 4 [env FLEETDECK_EXEC_DEADLINE; "
        "default: the timeout once per 64 hosts, plus 5 minutes]",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print each host's result and the summary as JSON lines (the protocol's frames), for scripts",
    )
    return parser


def _up(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .up import MEMORY_URL, run_all_in_one

    args.redis_url = MEMORY_URL
    gateway = load_settings(GatewaySettings, args, parser)
    agent = AgentSettings(redis_url=MEMORY_URL)
    worker = WorkerSettings(
        redis_url=MEMORY_URL, allowed_targets=gateway.allowed_targets, max_hosts=gateway.max_hosts
    )
    setup_logging(gateway.log_level, gateway.log_json)
    findings = check_ssh_setup(worker)
    if findings.errors:
        parser.error("\n  ".join(["the exec worker cannot start:", *findings.errors]))
    for warning in findings.warnings:
        logging.getLogger("fleetdeck").warning("exec: %s", warning)
    try:
        tokens = TokenStore(gateway.tokens_file)
    except TokenFileError as exc:
        parser.error(str(exc))
    asyncio.run(run_all_in_one(gateway, agent, worker, tokens))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words[:1] == ["exec"] and "--" in words:
        split = words.index("--")
        words, command = words[:split], words[split + 1 :]
    args = parser.parse_args(words)
    if args.command == "up":
        sys.exit(_up(args, parser))
    if args.command == "token":
        sys.exit(run_token_command(args, parser))
    if not command:
        parser.error("exec needs a command after --")
    if not args.token:
        parser.error("exec needs --token or FLEETDECK_TOKEN")
    sys.exit(
        asyncio.run(
            run_exec(
                args.url,
                args.token,
                args.targets,
                " ".join(command),
                args.timeout,
                as_json=args.json,
                deadline=args.deadline,
            )
        )
    )
