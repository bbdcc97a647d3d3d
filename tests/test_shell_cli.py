"""`fleetdeck shell` driven through a pseudo-terminal, against a real gateway, worker and OpenSSH
sshd on loopback: a PTY on the host, window-size changes, Ctrl-C, the exit status as its own, the
local terminal restored; refusals and an unreachable gateway as sentences, never a traceback."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.shellhost import PROMPT, shell_host
from tests.support.stacks import ExecStack, Fleet, Tokens

pytestmark = pytest.mark.ssh

HOST = "127.0.4.20"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Iterator[str]:
    with shell_host(tmp_path_factory.mktemp("shell-cli-sshd"), HOST, fleet):
        yield HOST


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Pty:
    """`fleetdeck shell …` on the slave side of a new pseudo-terminal, its controlling terminal."""

    def __init__(self, args: list[str], cols: int = 100, rows: int = 30) -> None:
        self.master, self.slave = os.openpty()
        set_size(self.slave, cols, rows)
        self.before = termios.tcgetattr(self.slave)
        self.output = ""
        self.seen = ""  # everything, for failure messages

        def controlling() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            [sys.executable, "-m", "fleetdeck", "shell", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=controlling,  # noqa: PLW1509 (one ioctl before exec, no locks taken)
        )

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def until(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Read until `pattern` matches what came since the last match."""
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.output)):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.seen[-2000:]!r}"
            ready, _w, _x = select.select([self.master], [], [], left)
            if ready:
                chunk = os.read(self.master, 65536).decode(errors="replace")
                self.output += chunk
                self.seen += chunk
        self.output = self.output[found.end() :]
        return found

    def exit_code(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        while select.select([self.master], [], [], 0)[0]:  # what it printed last
            chunk = os.read(self.master, 65536).decode(errors="replace")
            if not chunk:
                break
            self.seen += chunk
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def ptys() -> Iterator[list[Pty]]:
    made: list[Pty] = []
    yield made
    for pty in made:
        pty.close()


def run(pty: Pty, command: str, shows: str) -> re.Match[str]:
    """Type a command line, read until it shows `shows` and the prompt after it."""
    pty.send(command + "\r")
    found = pty.until(shows)
    pty.until(re.escape(PROMPT))
    return found


def stty_size(pty: Pty) -> tuple[int, int]:
    found = run(pty, "stty size", r"[\r\n](\d+) (\d+)\r\n")  # after the echo (and bash's bracketed paste)
    return int(found[1]), int(found[2])


def test_a_shell_in_your_own_terminal_with_its_size_ctrl_c_and_exit_status(
    exec_stack: ExecStack, tokens: Tokens, host: str, ptys: list[Pty]
) -> None:
    pty = Pty([host, "--url", exec_stack.gateway.url, "--token", tokens.operator], cols=100, rows=30)
    ptys.append(pty)
    pty.until(re.escape(PROMPT))
    # Raw mode: the local terminal echoes nothing itself and passes keys on as typed.
    attrs = termios.tcgetattr(pty.slave)
    assert not attrs[3] & (termios.ECHO | termios.ICANON | termios.ISIG)

    run(pty, "tty; echo TERM=$TERM", r"/dev/pts/\d+\r\nTERM=xterm-256color")
    assert stty_size(pty) == (30, 100)

    set_size(pty.master, 132, 43)  # the kernel tells `fleetdeck shell` (SIGWINCH)
    for _attempt in range(20):  # the resize and the keys travel apart until the signal is handled
        if stty_size(pty) == (43, 132):
            break
    else:
        raise AssertionError(f"the remote size never followed: {pty.seen[-500:]!r}")

    pty.send("echo sleeping; sleep 60; echo not-interrupted\r")
    pty.until(r"[\r\n]sleeping\r\n")
    pty.send("\x03")  # Ctrl-C reaches the remote shell, not this process
    pty.until(re.escape(PROMPT))
    run(pty, "echo still-here", r"[\r\n]still-here\r\n")
    assert not re.search(r"[\r\n]not-interrupted\r\n", pty.seen)  # only the echo of the command line

    pty.send("exit 7\r")
    assert pty.exit_code() == 7
    assert termios.tcgetattr(pty.slave) == pty.before, "the local terminal was not restored"
    assert "Traceback" not in pty.seen


def test_a_terminated_shell_command_restores_the_terminal(
    exec_stack: ExecStack, tokens: Tokens, host: str, ptys: list[Pty]
) -> None:
    pty = Pty([host, "--url", exec_stack.gateway.url, "--token", tokens.operator])
    ptys.append(pty)
    pty.until(re.escape(PROMPT))
    pty.process.terminate()
    assert pty.exit_code() == 128 + 15
    assert termios.tcgetattr(pty.slave) == pty.before
    assert "Traceback" not in pty.seen


def test_refusals_and_an_unreachable_gateway_are_sentences(
    exec_stack: ExecStack, tokens: Tokens, host: str, ptys: list[Pty], tmp_path: Path
) -> None:
    cases = [
        ([host, "--url", exec_stack.gateway.url, "--token", tokens.viewer], 2, r"operator"),
        (
            [host, "--url", exec_stack.gateway.url, "--token", "fdk_not-a-token"],
            2,
            r"refused the connection \(\d+\)",
        ),
        (
            ["127.0.0.[2-3]", "--url", exec_stack.gateway.url, "--token", tokens.operator],
            2,
            r"fleetdeck shell: ",
        ),
        (
            [host, "--url", "http://127.0.0.1:9", "--token", tokens.operator],
            3,
            r"cannot reach http://127\.0\.0\.1:9",
        ),
    ]
    for args, code, says in cases:
        pty = Pty(args)
        ptys.append(pty)
        assert pty.exit_code() == code, pty.seen
        assert re.search(says, pty.seen), pty.seen
        assert "Traceback" not in pty.seen
        assert termios.tcgetattr(pty.slave) == pty.before
