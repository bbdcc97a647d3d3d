"""Terminals end to end on a real OpenSSH sshd: browser socket -> gateway -> Redis -> worker ->
sshd PTY and back. A PTY (`tty`, `stty size`), resizes, Ctrl-C, exit status, the recording, the
refusals, and every way a terminal ends leaving no process behind on the host.

The sshd runs stock (a login shell, no ForceCommand) on 127.0.4.10, on the fleet's port so the
session's worker reaches it with its usual settings; its host key joins the fleet's known_hosts.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.opensshd import OpenSshd, start_sshd
from tests.support.stacks import ExecStack, Fleet, Tokens
from tests.support.waiting import eventually
from tests.support.wsclient import Frame, WsClient

pytestmark = pytest.mark.ssh

HOST = "127.0.4.10"
PROMPT = "fd$ "


@pytest.fixture(scope="module")
def shell_host(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Iterator[OpenSshd]:
    workdir = tmp_path_factory.mktemp("term-sshd")
    home = workdir / "home"
    home.mkdir()
    # A plain, quick shell with a prompt the tests can wait for.
    (home / ".profile").write_text(f"PS1='{PROMPT}'; export PS1\n")
    sshd = start_sshd(
        workdir / "sshd",
        HOST,
        fleet.client_key.with_suffix(".pub"),
        workdir / "commands.jsonl",
        fleet.port,
        record=False,
        home=home,
    )
    with fleet.known_hosts.open("a") as handle:
        handle.write(sshd.known_hosts_line)
    yield sshd
    sshd.stop()


class Term:
    """One terminal on a socket: its id, and its output so far."""

    def __init__(self, client: WsClient, term: str) -> None:
        self.client = client
        self.id = term
        self.output = ""

    async def send(self, data: str) -> None:
        await self.client.send({"type": "term_input", "term": self.id, "data": data})

    async def until(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Read output until `pattern` (a regex) matches what came since the last match."""

        async def read() -> re.Match[str]:
            while True:
                found = re.search(pattern, self.output)
                if found:
                    self.output = self.output[found.end() :]
                    return found
                frame = await self.client.recv(timeout)
                if frame.get("type") == "term_output" and frame["term"] == self.id:
                    self.output += frame["data"]
                elif frame.get("type") == "term_closed" and frame["term"] == self.id:
                    raise AssertionError(
                        f"closed while waiting for {pattern!r}: {frame}; saw {self.output!r}"
                    )

        return await asyncio.wait_for(read(), timeout)

    async def closed(self, timeout: float = 15.0) -> Frame:
        return await self.client.expect(
            lambda f: f.get("type") == "term_closed" and f.get("term") == self.id, timeout
        )


async def open_term(client: WsClient, cols: int = 80, rows: int = 24, host: str = HOST) -> Term:
    ref = uuid.uuid4().hex[:8]
    await client.send({"type": "term_open", "host": host, "cols": cols, "rows": rows, "ref": ref})
    frame = await client.expect(lambda f: f.get("ref") == ref, 30)
    assert frame["type"] == "term_opened", frame
    assert frame["host"] == host and (frame["cols"], frame["rows"]) == (cols, rows)
    term = Term(client, frame["term"])
    await term.until(re.escape(PROMPT))
    return term


@pytest.fixture
async def operator(exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd) -> Any:
    client = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    await client.expect_type("hello")
    yield client
    await client.close()


def processes_with(marker: str) -> list[int]:
    """Processes on this machine (the sshd side) whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry.name))
    return found


async def test_a_terminal_is_a_real_pty_sized_as_asked_and_resized(operator: WsClient) -> None:
    term = await open_term(operator, cols=120, rows=40)
    await term.send("tty; stty size; echo TERM=$TERM\r")
    await term.until(r"/dev/pts/\d+")
    await term.until(r"40 120")
    await term.until(r"TERM=xterm-256color")
    await operator.send({"type": "term_resize", "term": term.id, "cols": 100, "rows": 30})
    await term.send("stty size\r")
    await term.until(r"30 100")
    await term.send("exit 3\r")
    closed = await term.closed()
    assert closed["exit_code"] == 3 and "status 3" in closed["reason"]


async def test_ctrl_c_interrupts_a_running_command(operator: WsClient) -> None:
    term = await open_term(operator)
    naps = f"{uuid.uuid4().int % 10000 + 50000}"
    await term.send(f"sleep {naps}; echo after-sleep-$?\r")
    # Ctrl-C before sleep started would interrupt the shell, not the command.
    await eventually(lambda: processes_with(f"sleep {naps}"), 10, "sleep running")
    await term.send("\x03")
    await term.until(re.escape(PROMPT))
    await eventually(lambda: not processes_with(f"sleep {naps}"), 5, "sleep interrupted")
    await term.send("echo alive\r")
    await term.until("alive")
    await operator.send({"type": "term_close", "term": term.id})
    closed = await term.closed()
    assert closed["exit_code"] is None and closed["reason"] == "closed by alice"
