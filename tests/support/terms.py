"""Terminals in tests: the stock sshd they open shells on, a terminal as a client sees it,
opening one, and what runs on the sshd side (this machine)."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx

from testbed.opensshd import OpenSshd, start_sshd
from tests.support.stacks import Fleet
from tests.support.waiting import eventually
from tests.support.wsclient import Frame, WsClient

HOST = "127.0.4.10"
PROMPT = "fd$ "


def start_shell_host(workdir: Path, fleet: Fleet) -> OpenSshd:
    """A stock sshd (a login shell, no ForceCommand) on HOST, on the fleet's port so the session's
    worker reaches it with its usual settings; its host key joins the fleet's known_hosts."""
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
    return sshd


class Term:
    """One terminal on a socket: its id, and its output so far."""

    def __init__(self, client: WsClient, term: str) -> None:
        self.client = client
        self.id = term
        self.output = ""
        self.received = 0  # characters of output read so far

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
                    self.received += len(frame["data"])
                elif frame.get("type") == "term_closed" and frame["term"] == self.id:
                    raise AssertionError(
                        f"closed while waiting for {pattern!r}: {frame}; saw {self.output!r}"
                    )

        return await asyncio.wait_for(read(), timeout)

    async def closed(self, timeout: float = 15.0) -> Frame:
        """The terminal's `term_closed`, its output until then kept."""

        def check(frame: Frame) -> bool:
            if frame.get("type") == "term_output" and frame.get("term") == self.id:
                self.output += frame["data"]
            return frame.get("type") == "term_closed" and frame.get("term") == self.id

        try:
            return await self.client.expect(check, timeout)
        except TimeoutError:
            raise AssertionError(
                f"terminal {self.id} still open after {timeout:g} s: {self.output!r}"
            ) from None


async def open_term(client: WsClient, cols: int = 80, rows: int = 24, host: str = HOST) -> Term:
    ref = uuid.uuid4().hex[:8]
    await client.send({"type": "term_open", "host": host, "cols": cols, "rows": rows, "ref": ref})
    frame = await client.expect(lambda f: f.get("ref") == ref, 30)
    assert frame["type"] == "term_opened", frame
    assert frame["host"] == host and (frame["cols"], frame["rows"]) == (cols, rows)
    term = Term(client, frame["term"])
    await term.until(re.escape(PROMPT))
    return term


async def workers_alive(gateway_url: str, token: str) -> None:
    """Wait until the gateway counts a worker (it refuses terminals while it counts none)."""

    async def alive() -> bool:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"{gateway_url}/api/workers", headers={"Authorization": f"Bearer {token}"})
        return bool(reply.json()["alive"])

    await eventually(alive, 30, "an exec worker", interval=0.2)


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
