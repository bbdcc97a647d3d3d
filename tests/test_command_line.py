"""Every command's command line: `--version` and `-V` from the one VERSION file, `--help` whose
placeholders read as values and whose defaults are real, and `fleetdeck up` refusing a busy port,
naming the program that holds it, before it prints any URL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fleetdeck_common
from fleetdeck.portcheck import listeners, port_problem
from testbed.procs import BIN, ROOT, Service, free_port, wait_until

COMMANDS = ("fleetdeck", "fleetdeck-gateway", "fleetdeck-agent", "fleetdeck-worker")
# The help of every command built from a settings model: the services and `fleetdeck up`.
SETTINGS_HELP = (["fleetdeck-gateway"], ["fleetdeck-agent"], ["fleetdeck-worker"], ["fleetdeck", "up"])


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_every_command_says_its_version(command: str, flag: str) -> None:
    version = (ROOT / "VERSION").read_text().strip()
    assert fleetdeck_common.__version__ == version  # read from the installed metadata
    out = run(command, flag)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{command} {version}"


@pytest.mark.parametrize("argv", SETTINGS_HELP, ids=" ".join)
def test_help_shows_placeholders_that_read_as_values_and_real_defaults(argv: list[str]) -> None:
    out = run(*argv, "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # `--port PORT`, never `--port FLEETDECK_PORT`; the variable is named in the help text instead.
    assert not re.search(r"--[a-z-]+ (FLEETDECK_|REDIS_URL\b)", text.replace("--redis-url REDIS_URL", ""))
    assert "[env FLEETDECK_" in " ".join(text.split())
    assert "computed" not in text
    flat = " ".join(text.split())
    if argv[0] == "fleetdeck-agent":
        assert "--agent-name AGENT_NAME" in flat
        assert "default: this machine's host name]" in flat
        assert "[env FLEETDECK_PROC_PATH; default: /proc]" in flat
        assert "[env FLEETDECK_AGENT_LABELS; default: none]" in flat
    elif argv[0] == "fleetdeck-worker":
        assert "[env FLEETDECK_WORKER_NAME; default: host name and pid]" in flat
        assert "[env FLEETDECK_KNOWN_HOSTS; default: ~/.ssh/known_hosts]" in flat
        assert "[env FLEETDECK_ALLOWED_TARGETS; default: 127.0.0.0/8]" in flat
    else:  # the gateway's settings, also those of `fleetdeck up`
        assert "--port PORT" in flat and "[env FLEETDECK_PORT; default: 8000]" in flat
        assert "[env FLEETDECK_ALLOWED_ORIGINS; default: the gateway's own origin]" in flat
        assert "[env FLEETDECK_TOKENS_FILE; default: not set]" in flat
        assert "[env FLEETDECK_SECURE_COOKIES; default: off]" in flat


def _holder(tmp_path: Path, host: str, port: int) -> Service:
    script = tmp_path / "port_holder.py"
    script.write_text(
        "import signal, socket, sys\n"
        "server = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
        "print('listening', flush=True)\n"
        "signal.pause()  # holds the port until the test stops it\n"
    )
    holder = Service("port-holder", [sys.executable, str(script), host, str(port)], {}, tmp_path)
    wait_until(lambda: "listening" in holder.log(), 10, what="the program holding the port")
    return holder


@pytest.mark.parametrize("held_on", ["127.0.0.1", "0.0.0.0"])
def test_up_refuses_a_busy_port_naming_its_holder_before_any_url(tmp_path: Path, held_on: str) -> None:
    port = free_port()
    holder = _holder(tmp_path, held_on, port)
    try:
        out = run("fleetdeck", "up", "--port", str(port), env={"HOME": str(tmp_path)})
        assert out.returncode == 2, out.stdout + out.stderr
        assert "http://" not in out.stdout + out.stderr  # no login URL that leads elsewhere
        assert f"127.0.0.1:{port} is already in use by pid {holder.pid} (" in out.stderr
        assert f"port_holder.py {held_on} {port})" in out.stderr  # its command line
        assert "--port" in out.stderr and "FLEETDECK_PORT" in out.stderr
    finally:
        holder.stop()


def test_a_free_port_is_no_problem_and_other_failures_are_named() -> None:
    assert port_problem("127.0.0.1", free_port()) is None
    assert port_problem("127.0.0.1", 0) is None
    problem = port_problem("192.0.2.1", free_port())  # not an address of this machine
    assert problem is not None and problem.startswith("cannot listen on 192.0.2.1:")


def test_listening_sockets_are_read_from_proc_net_tcp() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n"
        "   1: 0100007F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1\n"
        "   2: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1\n"
    )
    found = listeners(8000, [table])
    assert [(listener.inode, listener.uid) for listener in found] == [(4242, 1000)]  # not the connection
    assert [listener.inode for listener in listeners(8001, [table])] == [4444]
    assert listeners(8002, [table]) == []
