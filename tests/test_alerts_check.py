"""`fleetdeck alerts check FILE` and the gateway given FLEETDECK_ALERT_RULES: the same sentence
for the same mistake, exit 2 from the check and a gateway that refuses to start."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testbed.procs import BIN

GOOD = """rules:
  - {name: cpu-hot, expr: total > 90, for: 5m, severity: critical}
  - {name: agent-gone, expr: offline}
"""
BAD = """rules:
  - {name: cpu-hot, expr: total > 90}
  - {name: disk-full, expr: disc >= 95}
"""
BAD_SAYS = (
    "rule 'disk-full': expr: unknown metric 'disc'; one of total, mem, load1, disk, net_rx, net_tx "
    "(or `offline`)"
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})}
    )


def test_check_exits_0_saying_how_many_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    done = _run(str(BIN / "fleetdeck"), "alerts", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2 rules ok\n"


def test_check_exits_2_naming_the_rule_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    done = _run(str(BIN / "fleetdeck"), "alerts", "check", str(path))
    assert done.returncode == 2
    assert done.stderr == f"fleetdeck alerts check: {BAD_SAYS}\n"
    missing = _run(str(BIN / "fleetdeck"), "alerts", "check", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read the rules file" in missing.stderr
    assert "Traceback" not in done.stderr + missing.stderr


def test_a_gateway_given_a_bad_rules_file_refuses_to_start_with_the_same_message(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    done = _run(
        str(BIN / "fleetdeck-gateway"),
        env={"FLEETDECK_ALERT_RULES": str(path), "REDIS_URL": "memory://", "FLEETDECK_PORT": "0"},
    )
    assert done.returncode != 0
    assert BAD_SAYS in done.stderr and "FLEETDECK_ALERT_RULES" in done.stderr
    assert "Traceback" not in done.stderr
