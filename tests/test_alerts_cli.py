"""`fleetdeck alerts` (what fires, a table or JSON) and `fleetdeck alerts silence`: the table, the
mistakes refused before anything is sent, and an unreachable gateway's exit code."""

from __future__ import annotations

import subprocess

from fleetdeck.alerts_client import table
from testbed.procs import BIN, free_port

FLEETDECK = str(BIN / "fleetdeck")


def fleetdeck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLEETDECK, *args], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env}
    )


def _alert(rule: str, host: str, severity: str, **extra: object) -> dict[str, object]:
    return {
        "rule": rule,
        "host": host,
        "state": "firing",
        "value": 97.25,
        "since": 1_796_670_000.0,
        "severity": severity,
        "summary": f"{rule} on {host}",
        "labels": {},
        **extra,
    }


def test_the_table_puts_the_worst_first_and_marks_silenced_alerts() -> None:
    lines = table(
        [
            _alert("load-high", "web-02", "warning", value=None),
            _alert("disk-full", "db-01", "critical", silenced=True),
            _alert("cpu-hot", "web-01\x1b[2J", "critical"),
        ]
    )
    assert lines[0].split() == ["RULE", "HOST", "SEVERITY", "VALUE", "SINCE", "(UTC)", "SUMMARY"]
    assert [line.split()[0] for line in lines[1:]] == ["cpu-hot", "disk-full", "load-high"]
    assert "web-01\\x1b[2J" in lines[1]  # a host name cannot drive the terminal
    assert lines[2].endswith("disk-full on db-01 (silenced)")
    assert "2026-12-07 19:00:00" in lines[2]
    assert lines[3].split()[3] == "-"  # an offline alert has no value
    column = lines[0].index("SEVERITY")  # columns line up
    assert [line[column:].split()[0] for line in lines[1:]] == ["critical", "critical", "warning"]


def test_without_a_token_it_says_so() -> None:
    done = fleetdeck("alerts")
    assert done.returncode == 2 and "alerts needs --token or FLEETDECK_TOKEN" in done.stderr


def test_a_silence_needs_a_rule_or_targets_a_duration_and_a_comment() -> None:
    done = fleetdeck("alerts", "silence", "--for", "2h", "--comment", "x", FLEETDECK_TOKEN="t")
    assert done.returncode == 2 and "needs a RULE, --targets or both" in done.stderr
    done = fleetdeck("alerts", "silence", "cpu-hot", "--comment", "x", FLEETDECK_TOKEN="t")
    assert done.returncode == 2 and "one of the arguments --for --until is required" in done.stderr
    done = fleetdeck("alerts", "silence", "cpu-hot", "--for", "2h", FLEETDECK_TOKEN="t")
    assert done.returncode == 2 and "--comment" in done.stderr


def test_an_unreachable_gateway_exits_3_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = fleetdeck("alerts", "--url", url, "--token", "t")
    assert done.returncode == 3 and f"cannot reach the gateway at {url}" in done.stderr
    done = fleetdeck(
        "alerts", "silence", "cpu-hot", "--for", "1h", "--comment", "x", "--url", url, "--token", "t"
    )
    assert done.returncode == 3 and "fleetdeck alerts silence: cannot reach" in done.stderr
