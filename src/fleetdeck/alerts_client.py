"""`fleetdeck alerts` (what fires, as a table or JSON) and `fleetdeck alerts silence` through a
gateway's HTTP API (`GET /api/alerts`, `POST /api/alerts/silences`).

Exit 0, 2 when the gateway refuses (a bad token, a viewer silencing, a bad field), 3 when it
cannot be reached."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from .exit_codes import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE

COLUMNS = ("RULE", "HOST", "SEVERITY", "VALUE", "SINCE (UTC)", "SUMMARY")


class GatewayError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON request to the gateway; GatewayError with the gateway's own sentence if refused."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http(s) checked)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        code = EXIT_REFUSED if 400 <= exc.code < 500 else EXIT_UNREACHABLE
        raise GatewayError(f"the gateway answered {exc.code}: {message}", code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GatewayError(
            f"cannot reach the gateway at {url.split('/api/', maxsplit=1)[0]}: {exc}", EXIT_UNREACHABLE
        ) from None


def _printable(text: str) -> str:
    """What hosts and people typed must not drive the terminal: escape control characters."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table(firing: list[dict[str, Any]]) -> list[str]:
    """What fires, one alert a line under a header, worst severity first, then by rule and host;
    a silenced alert's summary ends with "(silenced)"."""
    order = {"critical": 0, "warning": 1, "info": 2}
    rows: list[tuple[str, ...]] = [
        (
            str(a["rule"]),
            str(a["host"]),
            str(a["severity"]),
            _value(a.get("value")),
            _when(float(a["since"])),
            str(a.get("summary", "")) + (" (silenced)" if a.get("silenced") else ""),
        )
        for a in sorted(firing, key=lambda a: (order.get(a["severity"], 3), a["rule"], a["host"]))
    ]
    rows = [tuple(_printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in [COLUMNS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def list_alerts(url: str, token: str, as_json: bool) -> int:
    """`fleetdeck alerts`: print what fires now (and the last delivery error, on stderr)."""
    try:
        answer = call("GET", f"{url.rstrip('/')}/api/alerts", token)
    except GatewayError as exc:
        print(f"fleetdeck alerts: {exc}", file=sys.stderr)
        return exc.exit_code
    if as_json:
        print(json.dumps(answer))
        return EXIT_OK
    firing = answer.get("firing", [])
    if firing:
        print("\n".join(table(firing)))
    else:
        print("nothing fires")
    if answer.get("delivery_error"):
        print(f"fleetdeck alerts: delivery: {_printable(str(answer['delivery_error']))}", file=sys.stderr)
    return EXIT_OK


def silence(url: str, token: str, request: dict[str, Any]) -> int:
    """`fleetdeck alerts silence`: ask for a silence and say what it mutes until when."""
    try:
        made = call("POST", f"{url.rstrip('/')}/api/alerts/silences", token, request)
    except GatewayError as exc:
        print(f"fleetdeck alerts silence: {exc}", file=sys.stderr)
        return exc.exit_code
    what = " on ".join(
        part
        for part in (f"rule {made['rule']}" if made.get("rule") else "", made.get("targets") or "")
        if part
    )
    print(_printable(f"silenced {what} until {_when(float(made['until']))} UTC (id {made['id']})"))
    return EXIT_OK
