"""The shell text that makes a command stoppable, run by a real /bin/sh on this machine, and the
capture that takes the group line out of stderr."""

from __future__ import annotations

import asyncio
import os
import subprocess

from fleetdeck_worker.sshoutput import GROUP_LINE_MAX, Capped, Stderr
from fleetdeck_worker.stopscript import stop_script, wrap_command
from testbed.procs import wait_until


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    out = subprocess.run(["ps", "-A", "-o", "pgid=", "-o", "stat="], capture_output=True, text=True).stdout
    return any(
        line.split()[0] == str(pgid) and not line.split()[1].startswith("Z") for line in out.splitlines()
    )


def _stop(pid: int) -> str:
    return subprocess.run(["sh", "-c", stop_script(pid)], capture_output=True, text=True, timeout=10).stdout


def test_the_wrapped_command_names_its_process_group_first_on_stderr() -> None:
    # A new session, as sshd gives a command without a terminal.
    done = subprocess.run(
        ["setsid", "sh", "-c", wrap_command("echo out; echo err >&2; exit 3")], capture_output=True, text=True
    )
    first, *rest = done.stderr.splitlines()
    assert first.startswith("fleetdeck-pgid ") and int(first.split()[1]) > 1
    assert rest == ["err"] and done.stdout == "out\n" and done.returncode == 3


def test_the_stop_script_ends_the_whole_group_with_sigterm() -> None:
    # A command with a pipeline and a background job: everything in its group must end.
    leader = subprocess.Popen(["setsid", "sh", "-c", "sleep 60 | cat & sleep 60; wait"])
    try:
        wait_until(
            lambda: _group_alive(leader.pid) and os.getpgid(leader.pid) == leader.pid, what="the group"
        )
        assert _stop(leader.pid).split()[-1] == "term"
        assert not _group_alive(leader.pid)
    finally:
        leader.kill()
        leader.wait()


def test_a_group_that_ignores_sigterm_is_killed() -> None:
    leader = subprocess.Popen(
        ["setsid", "sh", "-c", "trap '' TERM; echo ready; sleep 60"], stdout=subprocess.PIPE
    )
    try:
        assert leader.stdout is not None and leader.stdout.readline() == b"ready\n"
        assert _stop(leader.pid).split()[-1] == "kill"
        assert not _group_alive(leader.pid)
    finally:
        leader.kill()
        leader.wait()


def test_the_stop_script_says_gone_when_nothing_is_left() -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert _stop(ended.pid).split()[-1] == "gone"


def test_capped_keeps_the_first_bytes_and_says_it_cut() -> None:
    capped = Capped(5)
    capped.add(b"abc")
    assert not capped.truncated
    capped.add(b"defgh")
    assert capped.text() == "abcde" and capped.truncated
    assert Capped(2).text() == ""


def test_capped_text_replaces_bytes_that_are_not_utf8() -> None:
    capped = Capped(10)
    capped.add(b"ok\xff")
    assert capped.text() == "ok\ufffd"


async def test_stderr_takes_out_the_group_line_even_split_across_chunks() -> None:
    err = Stderr(100)
    err.add(b"login banner\nfleetdeck-pg")
    assert not err.known.is_set()
    err.add(b"id 4242\nreal error\n")
    assert err.known.is_set() and err.group == 4242
    err.end()
    assert err.text() == "login banner\nreal error\n"


async def test_stderr_without_a_group_line_keeps_everything() -> None:
    err = Stderr(10 * GROUP_LINE_MAX)
    err.add(b"x" * (GROUP_LINE_MAX + 1))  # past the window the line is looked for in
    assert err.known.is_set() and err.group is None
    err.add(b"fleetdeck-pgid 7\n")  # too late: it is output now
    assert err.text().endswith("fleetdeck-pgid 7\n")


async def test_a_stream_that_ends_before_the_group_line_still_keeps_its_text() -> None:
    err = Stderr(100)
    err.add(b"sh: not found\n")
    err.end()
    assert err.known.is_set() and err.group is None and err.text() == "sh: not found\n"
    await asyncio.wait_for(err.known.wait(), 1)
