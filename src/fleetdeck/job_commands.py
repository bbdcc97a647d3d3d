"""`fleetdeck jobs`, `watch JOB`, `cancel JOB` and `hosts`: a gateway's jobs and hosts from the shell.

Exit 0, 2 when the gateway refuses (a bad token, an unknown job, a viewer cancelling), 3 when it
cannot be reached; `watch` exits as `exec` does."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .alerts_client import GatewayError, call
from .exit_codes import EXIT_REFUSED, EXIT_UNREACHABLE

JOB_COMMANDS = ("jobs", "watch", "cancel", "hosts")
CANCEL_WAIT_SECONDS = 30.0


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _connection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--url",
        default=os.environ.get("FLEETDECK_URL", "http://127.0.0.1:8000"),
        help="gateway URL [env FLEETDECK_URL; default http://127.0.0.1:8000]",
    )
    command.add_argument(
        "--token", default=os.environ.get("FLEETDECK_TOKEN"), help="token [env FLEETDECK_TOKEN]"
    )


def add_job_commands(commands: Any) -> None:
    """The four subcommands, each with --url and --token."""
    jobs = commands.add_parser("jobs", help="recent jobs: id, who, when, targets, state, summary")
    jobs.add_argument("--json", action="store_true", help="print the gateway's JSON list")
    watch = commands.add_parser(
        "watch",
        help="a job's results so far, then live (exit codes as exec)",
        description="Print a job's results so far, then live, then its summary. Exit as exec does.",
    )
    watch.add_argument("job", help="the job's id (see fleetdeck jobs)")
    watch.add_argument("--json", action="store_true", help="print the result and done frames as JSON lines")
    cancel = commands.add_parser("cancel", help="cancel a job: running hosts stop, the rest never start")
    cancel.add_argument("job", help="the job's id (see fleetdeck jobs)")
    hosts = commands.add_parser("hosts", help="hosts: name, online, address, labels, CPU and memory now")
    hosts.add_argument("--json", action="store_true", help="print one JSON object per host")
    for command in (jobs, watch, cancel, hosts):
        _connection_options(command)


def run_job_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.token:
        parser.error(f"{args.command} needs --token or FLEETDECK_TOKEN")
    base = args.url.rstrip("/")
    try:
        if args.command == "jobs":
            return _jobs(base, args.token, args.json)
        if args.command == "hosts":
            return asyncio.run(_hosts(base, args.token, args.json))
        if args.command == "cancel":
            return asyncio.run(_cancel(base, args.token, args.job))
    except GatewayError as exc:
        print(f"fleetdeck {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    from .exec_client import run_exec

    return asyncio.run(run_exec(base, args.token, "", "", 30.0, as_json=args.json, watch=args.job))


def _summary(summary: dict[str, int] | None) -> str:
    return ", ".join(f"{status} {count}" for status, count in (summary or {}).items()) or "-"


def _jobs(base: str, token: str, as_json: bool) -> int:
    jobs: list[dict[str, Any]] = call("GET", f"{base}/api/jobs", token)["jobs"]
    if as_json:
        print(json.dumps(jobs, indent=2))
        return 0
    rows = [("ID", "BY", "QUEUED (UTC)", "TARGETS", "STATE", "SUMMARY", "WHAT")]
    for job in jobs:
        what = f"copy to {job['copy']['dest']}" if job.get("copy") else job.get("command", "")
        wave = f" wave {job['wave']}/{job['waves']}" if job.get("wave") and job["state"] == "running" else ""
        rows.append(
            (
                job["job"],
                job["by"],
                _when(job.get("ts")),
                job["targets"][:40],
                job["state"] + wave,
                _summary(job.get("summary")),
                what[:60],
            )
        )
    _table(rows)
    if not jobs:
        print("(no jobs yet)", file=sys.stderr)
    return 0


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    clean = [tuple(_printable(str(cell)) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in clean) for i in range(len(clean[0]))]
    for row in clean:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def _session(base: str, token: str) -> Any:
    from websockets.asyncio.client import connect

    from .exec_client import ws_url

    return connect(ws_url(base), additional_headers={"Authorization": f"Bearer {token}"}, max_size=None)


async def _frames_until(ws: Any, want: Any) -> dict[str, Any]:
    """The first frame `want` accepts; GatewayError for an error frame with our ref."""
    async with asyncio.timeout(CANCEL_WAIT_SECONDS):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame.get("type") == "error" and frame.get("ref") == "cli":
                raise GatewayError(f"{frame['code']}: {frame['message']}", EXIT_REFUSED)
            if want(frame):
                return frame


async def _over_ws(base: str, token: str, first: dict[str, Any], want: Any) -> dict[str, Any]:
    from websockets.exceptions import InvalidStatus

    try:
        async with await _session(base, token) as ws:
            await ws.send(json.dumps({**first, "ref": "cli"}))
            return await _frames_until(ws, want)
    except InvalidStatus as exc:
        raise GatewayError(
            f"the gateway refused the connection ({exc.response.status_code}): check the token and URL",
            EXIT_REFUSED,
        ) from None
    except (OSError, TimeoutError) as exc:
        raise GatewayError(f"cannot reach the gateway at {base}: {exc}", EXIT_UNREACHABLE) from None


async def _cancel(base: str, token: str, job: str) -> int:
    frame = await _over_ws(
        base, token, {"type": "cancel", "job": job}, lambda f: f.get("type") == "job" and f.get("job") == job
    )
    print(f"job {job}: cancel sent ({frame['state']}; {_summary(frame.get('summary'))})")
    return 0


async def _hosts(base: str, token: str, as_json: bool) -> int:
    hosts: list[dict[str, Any]] = call("GET", f"{base}/api/hosts", token)["hosts"]
    fleet = await _over_ws(
        base, token, {"type": "subscribe", "topics": ["fleet"]}, lambda f: f.get("type") == "fleet"
    )
    now = {h["host"]: h for h in fleet.get("hosts", [])}
    for host in hosts:
        host["cpu"] = now.get(host["host"], {}).get("total")
        host["mem"] = now.get(host["host"], {}).get("mem")
    if as_json:
        for host in hosts:
            print(json.dumps(host))
        return 0
    rows = [("HOST", "ONLINE", "ADDRESS", "CPU %", "MEM %", "LABELS")]
    for host in sorted(hosts, key=lambda h: h["host"]):
        labels = ",".join(f"{k}={v}" for k, v in sorted(host.get("labels", {}).items()))
        rows.append(
            (
                host["host"],
                "yes" if host["online"] else "no",
                host.get("address") or host["host"],
                "-" if host["cpu"] is None else f"{host['cpu']:.1f}",
                "-" if host["mem"] is None else f"{host['mem']:.1f}",
                labels or "-",
            )
        )
    _table(rows)
    return 0
