"""`fleetdeck copy FILE TARGETS DEST`: upload a file through a gateway, then push it to the hosts
as a copy job, printing and exiting like `fleetdeck exec`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleetdeck_common.messages import DEFAULT_MODE, FileCopy, describe_validation_error

from .exit_codes import EXIT_REFUSED, EXIT_UNREACHABLE

UPLOAD_TIMEOUT_SECONDS = 300.0


def add_copy_command(commands: Any) -> None:
    copy = commands.add_parser(
        "copy",
        help="copy a file to hosts through a gateway",
        usage="fleetdeck copy [--url URL] [--token TOKEN] [--mode MODE] [--timeout SECONDS] [--json] "
        "[--batch N|N%] [--max-failures N|N%] FILE TARGETS DEST",
        description="Upload FILE to the gateway, then write it at DEST (an absolute path) on every host "
        "of TARGETS, each host to a temporary name renamed into place. One line per host as it "
        "finishes, then hosts grouped by outcome. Exit 0 only if every host holds the file, 1 if "
        f"any does not, {EXIT_REFUSED} if the gateway refused, {EXIT_UNREACHABLE} if it cannot be "
        "reached, 4 if the deadline passed first.",
    )
    copy.add_argument("file", type=Path, help="the local file to copy")
    copy.add_argument("targets", help="target expression, e.g. 'web[01-20]'")
    copy.add_argument("dest", help="absolute path of the file on each host, e.g. /etc/app/app.conf")
    copy.add_argument("--mode", default=DEFAULT_MODE, help=f"octal mode of the file [default {DEFAULT_MODE}]")
    copy.add_argument(
        "--url",
        default=os.environ.get("FLEETDECK_URL", "http://127.0.0.1:8000"),
        help="gateway URL [env FLEETDECK_URL; default http://127.0.0.1:8000]",
    )
    copy.add_argument(
        "--token", default=os.environ.get("FLEETDECK_TOKEN"), help="operator token [env FLEETDECK_TOKEN]"
    )
    copy.add_argument(
        "--timeout", type=float, default=60.0, help="seconds each host may take to receive it [default 60]"
    )
    copy.add_argument("--batch", metavar="N|N%", help="copy in waves of N hosts (or N%% of them)")
    copy.add_argument(
        "--max-failures", metavar="N|N%", help="start no more hosts once more than N (or N%%) have failed"
    )
    copy.add_argument(
        "--json", action="store_true", help="print each host's result and the summary as JSON lines"
    )


def _say(message: str) -> None:
    print(f"fleetdeck copy: {message}", file=sys.stderr)


def upload(url: str, token: str, data: bytes) -> tuple[int, dict[str, Any]]:
    """POST the bytes to /api/files: (HTTP status, the answer's JSON); OSError if unreachable."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"{url} is not an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 (http(s) checked)
        url.rstrip("/") + "/api/files",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return exc.code, body if isinstance(body, dict) else {}


def run_copy_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.token:
        parser.error("copy needs --token or FLEETDECK_TOKEN")
    try:
        spec = FileCopy(file="0" * 32, dest=args.dest, mode=args.mode)  # checked before uploading
    except ValidationError as exc:
        parser.error(describe_validation_error(exc))
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        parser.error(f"cannot read {args.file}: {exc.strerror or exc}")
    try:
        status, body = upload(args.url, args.token, data)
    except OSError as exc:
        _say(f"cannot reach {args.url}: {getattr(exc, 'reason', exc)}")
        return EXIT_UNREACHABLE
    if status != 201:
        _say(f"the gateway refused the upload ({status}): {body.get('message', 'no reason given')}")
        return EXIT_REFUSED
    print(f"uploaded {args.file} ({body['size']} bytes, sha256 {body['sha256'][:16]}…)", file=sys.stderr)
    copy = {"file": body["file"], "dest": spec.dest, "mode": spec.mode}
    fields = {"batch": args.batch, "max_failures": args.max_failures}
    rolling = {name: value for name, value in fields.items() if value is not None}
    from .exec_client import run_exec  # needs websockets (the exec extra): not at import, for every image

    try:
        return asyncio.run(
            run_exec(
                args.url,
                args.token,
                args.targets,
                "",
                args.timeout,
                as_json=args.json,
                copy=copy,
                rolling=rolling,
            )
        )
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
