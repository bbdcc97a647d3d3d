"""Command lines described as data: a benchmark's options (their defaults) give the flags it takes
(`parser`), and options given to a client process become the flags it is started with (`flags`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harness import common_options

HELP = {
    "clients": "WebSocket clients",
    "hosts": "simulated hosts at 1 Hz",
    "duration": "seconds measured",
    "ping_interval": "the gateway's WebSocket pings, s",
    "processes": "client processes",
    "probes": "clients that time every host entry",
    "probe_every": "one client in N times every entry",
    "no_batch": "one frame per message (not /ws?batch=1)",
    "rounds": "rounds, each tool or server in turn",
    "command": "the command run on every host",
}

PEER = {"port": 0, "redis": "", "max_seconds": 900.0}  # a fan-out peer's: where it serves, what it relays


def parser(
    doc: str,
    options: Mapping[str, Any],
    helps: Mapping[str, str] | None = None,
    common: bool = True,
    profile: bool = False,
    attempts: int = 1,
    settle: float = 5,
) -> argparse.ArgumentParser:
    """A flag for each of `options` from its default (a bool: a bare flag; a tuple: the choices, the
    first the default; a list: choices, one or more), then the options every benchmark takes
    (`common_options`; with `common` false, none); `profile`: --profile too."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n", maxsplit=1)[0].split()))
    for key, default in options.items():
        flag, text = f"--{key.replace('_', '-')}", {**HELP, **(helps or {})}.get(key)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, choices=default, default=default[0], help=text)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="+", choices=default, default=default, help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text)
    if profile:
        parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of the servers")
    if common:
        common_options(parser, attempts, settle)
    return parser


def flags(**options: object) -> list[str]:
    """Command-line flags: `probe_every=20` is `--probe-every 20`, True a bare flag, False or None none."""
    out = []
    for key, value in options.items():
        if value is not None and value is not False:
            out += [f"--{key.replace('_', '-')}", *([] if value is True else [str(value)])]
    return out
