"""The `fleetdeck` command: `up`, `token add`, `exec`, `copy`, `shell`, `audit`, `redis-users`, `alerts`,
`jobs`, `watch`, `cancel`, `hosts`."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

from fleetdeck_common.cli import add_settings_arguments, add_version_argument, load_settings
from fleetdeck_common.messages import MAX_TIMEOUT_SECONDS

from .alerts_command import add_alerts_command, run_alerts_command
from .audit_command import add_audit_command, run_audit_command
from .copy_command import add_copy_command, run_copy_command
from .exit_codes import EXIT_INTERRUPTED, EXIT_STDOUT_CLOSED
from .job_commands import JOB_COMMANDS, add_job_commands, run_job_command
from .shell_command import add_shell_command
from .stdout_watch import silence_stdout

# What a subcommand needs beyond fleetdeck-common, and the extra of the `fleetdeck` project that
# brings it (pyproject.toml). Each image carries the command with only its own service installed:
# `--version` works everywhere, and a subcommand whose parts are missing says so.
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "up": (("fleetdeck_gateway", "fleetdeck_agent", "fleetdeck_worker"), "fleetdeck[all]"),
    "token": (("fleetdeck_gateway",), "fleetdeck[token]"),
    "exec": (("websockets",), "fleetdeck[exec]"),
    "shell": (("websockets",), "fleetdeck[exec]"),
    "watch": (("websockets",), "fleetdeck[exec]"),
    "cancel": (("websockets",), "fleetdeck[exec]"),
    "hosts": (("websockets",), "fleetdeck[exec]"),
    "copy": (("websockets",), "fleetdeck[exec]"),
    "redis-users": (("fleetdeck_gateway", "cryptography"), "fleetdeck[token]"),  # sessions; --tls
}


def missing_parts(command: str) -> str | None:
    """Why `fleetdeck COMMAND` cannot run in this installation, or None when it can."""
    modules, extra = NEEDS[command]
    lacking = [module for module in modules if importlib.util.find_spec(module) is None]
    if not lacking:
        return None
    hint = "; with Docker, the gateway image has it (docker compose run --rm gateway fleetdeck ...)"
    return (
        f"`fleetdeck {command}` needs {', '.join(lacking)}, which this installation lacks: "
        f"install '{extra}'{hint if command != 'up' else ''}"
    )


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
    add_version_argument(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up",
        help="gateway + local agent + worker in one process, no Redis",
        description="Run the whole of fleetdeck in one process on the in-memory broker. "
        "The gateway settings below are flags and variables; the local agent and worker are given "
        "the same value of every setting they share with the gateway (history tiers, job key, "
        "targets, logging, ...); their own (FLEETDECK_INTERVAL, FLEETDECK_SSH_*, ...) come from the "
        "environment.",
    )
    if missing_parts("up") is None:
        from fleetdeck_gateway.settings import GatewaySettings

        add_settings_arguments(up, GatewaySettings, exclude={"redis_url", "redis_url_file"})

    if missing_parts("token") is None:
        from .token_commands import add_token_commands

        add_token_commands(commands)
    else:  # listed all the same; running it says what is missing
        commands.add_parser("token", help="manage access tokens (needs fleetdeck[token])")
    if missing_parts("redis-users") is None:
        from .redis_users import add_redis_users_command

        add_redis_users_command(commands)
    else:
        commands.add_parser("redis-users", help="least-privilege Redis users (needs fleetdeck[token])")
    add_audit_command(commands)
    add_alerts_command(commands)
    add_shell_command(commands)
    add_job_commands(commands)
    add_copy_command(commands)

    run = commands.add_parser(
        "exec",
        help="run a command on hosts through a gateway",
        usage="fleetdeck exec [--url URL] [--token TOKEN] [--timeout SECONDS] [--deadline SECONDS] [--json] "
        "[--batch N|N%] [--max-failures N|N%] TARGETS -- COMMAND...",
        description="Run COMMAND on every host of TARGETS through a gateway; one line per host as it "
        "finishes, then hosts grouped by identical output. Exit 0 only if every host "
        "succeeded, 1 if any did not, 2 if the gateway refused, 3 if it cannot be reached, "
        "4 if the deadline passed first, 130 after Ctrl-C (which cancels the job), 141 when stdout's "
        "reader went away (the job goes on).",
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
        "--batch",
        metavar="N|N%",
        help="roll out in waves of N hosts (or N%% of them), one wave after the other",
    )
    run.add_argument(
        "--max-failures",
        metavar="N|N%",
        help="start no more hosts once more than N (or N%%) have not succeeded; the rest are cancelled",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print each host's result and the summary as JSON lines (the protocol's frames), for scripts",
    )
    return parser


def _up(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from fleetdeck_agent.sampler import proc_problem
    from fleetdeck_common.alerts.rules import RulesError
    from fleetdeck_common.alerts.rulesfile import load_rules
    from fleetdeck_common.logs import setup_logging
    from fleetdeck_gateway.auth.tokenfile import TokenFileError
    from fleetdeck_gateway.auth.tokenstore import TokenStore
    from fleetdeck_gateway.settings import GatewaySettings
    from fleetdeck_worker.preflight import check_ssh_setup

    from .portcheck import port_problem
    from .up import MEMORY_URL, local_services, run_all_in_one

    args.redis_url = MEMORY_URL
    gateway = load_settings(GatewaySettings, args, parser)
    # Before any URL is printed: one that leads to another program is worse than none.
    if problem := port_problem(gateway.host, gateway.port):
        parser.exit(2, f"fleetdeck up: {problem}\n")
    if gateway.alert_rules is not None:
        try:
            load_rules(gateway.alert_rules)
        except RulesError as exc:
            parser.exit(2, f"fleetdeck up: FLEETDECK_ALERT_RULES: {exc}\n")
    agent, worker = local_services(gateway)
    if agent.proc_path is not None and (problem := proc_problem(agent.proc_path)):
        parser.error(f"the local agent cannot start: {problem}")
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


def rolling_fields(args: argparse.Namespace) -> dict[str, str]:
    """`--batch` and `--max-failures` as the job's fields (the gateway checks them)."""
    fields = {"batch": args.batch, "max_failures": args.max_failures}
    return {name: value for name, value in fields.items() if value is not None}


def main(argv: Sequence[str] | None = None) -> None:
    """Run a subcommand; Ctrl-C or a closed stdout ends any of them without a traceback."""
    try:
        _main(argv)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_STDOUT_CLOSED)


def _main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words[:1] == ["exec"] and "--" in words:
        split = words.index("--")
        words, command = words[:split], words[split + 1 :]
    if words[:1] and words[0] in NEEDS and (problem := missing_parts(words[0])):
        parser.exit(2, f"fleetdeck: {problem}\n")
    args = parser.parse_args(words)
    if args.command == "up":
        sys.exit(_up(args, parser))
    if args.command == "token":
        from .token_commands import run_token_command

        sys.exit(run_token_command(args, parser))
    if args.command == "redis-users":
        from .redis_users import run_redis_users_command

        sys.exit(run_redis_users_command(args))
    if args.command == "audit":
        sys.exit(run_audit_command(args, parser))
    if args.command == "alerts":
        sys.exit(run_alerts_command(args, parser))
    if args.command in JOB_COMMANDS:
        sys.exit(run_job_command(args, parser))
    if args.command == "copy":
        sys.exit(run_copy_command(args, parser))
    if args.command == "shell":
        from .shell_client import run_shell_command

        sys.exit(run_shell_command(args, parser))
    if not command:
        parser.error("exec needs a command after --")
    if not args.token:
        parser.error("exec needs --token or FLEETDECK_TOKEN")
    from .exec_client import run_exec

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
                rolling=rolling_fields(args),
            )
        )
    )
