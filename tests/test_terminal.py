"""Terminals end to end on a real OpenSSH sshd: browser socket -> gateway -> Redis -> worker ->
sshd PTY and back. A PTY (`tty`, `stty size`), resizes, Ctrl-C, exit status, the recording, the
refusals, and every way a terminal ends leaving no process behind on the host.

The sshd runs stock (a login shell, no ForceCommand) on 127.0.4.10, on the fleet's port so the
session's worker reaches it with its usual settings; its host key joins the fleet's known_hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from fleetdeck_common.terms.wire import BEAT_SECONDS, WINDOW_CHARS
from fleetdeck_gateway.auth.tokenedit import add_token, remove_token
from fleetdeck_worker.termserver import GATEWAY_LOST_AFTER
from fleetdeck_worker.termsession import SSH_WINDOW
from testbed.opensshd import OpenSshd
from testbed.procs import start_gateway
from tests.support.stacks import UNKNOWN_HOST_KEY, UNREACHABLE, ExecStack, Fleet, Tokens, private_stack
from tests.support.terms import HOST, PROMPT, open_term, processes_with, workers_alive
from tests.support.waiting import eventually
from tests.support.wsclient import Frame, WsClient

pytestmark = pytest.mark.ssh


@pytest.fixture
async def operator(exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd) -> Any:
    await workers_alive(exec_stack.gateway.url, tokens.operator)
    client = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    await client.expect_type("hello")
    yield client
    await client.close()


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
    await term.send("echo alive-$((6*7))\r")
    await term.until("alive-42")  # the shell's answer, not the echo of what was typed
    await operator.send({"type": "term_close", "term": term.id})
    closed = await term.closed()
    assert closed["exit_code"] is None and closed["reason"] == "closed by alice"


def has_ref(ref: str, frame: Frame) -> bool:
    return frame.get("ref") == ref


def marker_sleep() -> str:
    """A `sleep` whose command line no other test's has."""
    return f"sleep {uuid.uuid4().int % 100000 + 100000}"


async def test_the_session_is_recorded_listed_and_audited(
    exec_stack: ExecStack, operator: WsClient, tokens: Tokens
) -> None:
    term = await open_term(operator, cols=90, rows=20)
    await operator.send({"type": "term_resize", "term": term.id, "cols": 70, "rows": 15})
    secret = f"typed-{uuid.uuid4().hex[:8]}"
    # Typed with echo off, like a password: input is never recorded, and this was never printed.
    await term.send("stty -echo; echo reading-$((40+2)); read x; stty echo; echo got-$((${#x}+0))\r")
    await term.until("reading-42")
    await term.send(f"{secret}\r")
    await term.until(f"got-{len(secret)}")
    await term.send("exit 0\r")
    assert (await term.closed())["exit_code"] == 0
    headers = {"Authorization": f"Bearer {tokens.operator}"}
    async with httpx.AsyncClient(base_url=exec_stack.gateway.url, headers=headers) as http:
        listed = (await http.get("/api/terms")).json()["terms"]
        mine = next(t for t in listed if t["id"] == term.id)
        assert mine["host"] == HOST and mine["user"] == "alice" and mine["exit_code"] == 0
        assert mine["end"] >= mine["start"] and (mine["cols"], mine["rows"]) == (90, 20)
        cast = await http.get(f"/api/terms/{term.id}/cast")
        assert cast.headers["content-type"].startswith("application/x-asciicast")
        header, *events = [json.loads(line) for line in cast.text.splitlines()]
        assert header["version"] == 2 and (header["width"], header["height"]) == (90, 20)
        assert {kind for _t, kind, _d in events} == {"o", "r"} and [
            int(n) for n in next(d for _t, k, d in events if k == "r").split("x")
        ] == [70, 15]
        printed = "".join(d for _t, k, d in events if k == "o")
        assert f"got-{len(secret)}" in printed and secret not in printed
        assert [t for t, _k, _d in events] == sorted(t for t, _k, _d in events)
        viewer = {"Authorization": f"Bearer {tokens.viewer}"}
        assert (await http.get("/api/terms", headers=viewer)).status_code == 403
        assert (await http.get(f"/api/terms/{term.id}/cast", headers=viewer)).status_code == 403
        assert (await http.get("/api/terms/nothing-here/cast")).status_code == 404
        audit = (await http.get("/api/audit", params={"limit": 200})).json()["entries"]
    entries = {(e["action"], e["outcome"]) for e in audit if e.get("term") == term.id}
    assert entries == {("term_open", "accepted"), ("term_close", "closed")}
    closed = next(e for e in audit if e.get("term") == term.id and e["action"] == "term_close")
    assert closed["user"] == "alice" and closed["targets"] == HOST and closed["exit_code"] == 0


async def test_refusals_name_what_is_wrong_and_carry_the_ref(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd, operator: WsClient
) -> None:
    viewer = await WsClient.open(exec_stack.gateway.ws_url, tokens.viewer)
    try:
        await viewer.send({"type": "term_open", "host": HOST, "ref": "v1"})
        frame = await viewer.expect_type("error", ref="v1")
        assert frame["code"] == "forbidden" and "operator" in frame["message"]
    finally:
        await viewer.close()
    name = f"scoped-{uuid.uuid4().hex[:6]}"
    scoped_token = add_token(tokens.file, name, "operator", scope="127.0.0.2")
    scoped = await WsClient.open(exec_stack.gateway.ws_url, scoped_token)
    try:
        await scoped.send({"type": "term_open", "host": HOST, "ref": "s1"})
        frame = await scoped.expect_type("error", ref="s1")
        assert frame["code"] == "forbidden" and f"{HOST} is outside the targets" in frame["message"]
    finally:
        await scoped.close()
        remove_token(tokens.file, name)
    for host, code, words in (
        ("10.9.8.7", "invalid_targets", "10.9.8.7"),  # outside the allowlist
        ("127.0.4.10-11", "invalid_targets", "exactly one host"),
    ):
        await operator.send({"type": "term_open", "host": host, "ref": "o1"})
        frame = await operator.expect_type("error", ref="o1")
        assert frame["code"] == code and words in frame["message"], frame
    for frame in (
        {"type": "term_input", "term": "not-a-term", "data": "ls\r", "ref": "i1"},
        {"type": "term_resize", "term": "not-a-term", "cols": 10, "rows": 10, "ref": "i1"},
        {"type": "term_close", "term": "not-a-term", "ref": "i1"},
    ):
        await operator.send(frame)
        error = await operator.expect_type("error", ref="i1")
        assert error["code"] == "not_found" and "not-a-term" in error["message"]
    term = await open_term(operator)  # the refusals left the socket serving
    await operator.send({"type": "term_close", "term": term.id})
    await term.closed()
    await operator.send({"type": "term_input", "term": term.id, "data": "ls\r", "ref": "late"})
    assert (await operator.expect_type("error", ref="late"))["code"] == "not_found"


async def test_a_dropped_socket_ends_the_shell_and_what_runs_in_it(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd
) -> None:
    client = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    term = await open_term(client)
    nap = marker_sleep()
    await term.send(f"{nap}\r")
    await eventually(lambda: processes_with(nap), 10, "the command running")
    client.ws.transport.abort()  # gone without a close frame, as a crashed browser is
    await eventually(lambda: not processes_with(nap), 10, "the command gone with its terminal")


async def test_revoking_the_token_ends_its_terminals_within_5_s(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd
) -> None:
    name = f"revoked-{uuid.uuid4().hex[:6]}"
    client = await WsClient.open(exec_stack.gateway.ws_url, add_token(tokens.file, name, "operator"))
    try:
        term = await open_term(client)
        nap = marker_sleep()
        await term.send(f"{nap}\r")
        await eventually(lambda: processes_with(nap), 10, "the command running")
        remove_token(tokens.file, name)
        closed = await term.closed(timeout=5)
        assert closed["exit_code"] is None and "token" in closed["reason"], closed
        await eventually(lambda: not processes_with(nap), 10, "the command gone with its terminal")
    finally:
        await client.close()


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


async def small_receive_buffer(url: str) -> socket.socket:
    """A socket connected to `url`'s host whose receive buffer the kernel does not grow (it would
    to megabytes on loopback): what the test client holds unread stays the same on any machine."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    return sock


async def test_a_flood_to_a_client_that_stops_reading_stays_bounded_and_ctrl_c_still_stops_it(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd
) -> None:
    await workers_alive(exec_stack.gateway.url, tokens.operator)
    url = exec_stack.gateway.ws_url
    # A client that holds little unread (a small socket buffer, two frames), so that the bound on
    # what `yes` may write is about the gateway and the worker, not the test's own buffers.
    client = await WsClient.open(url, tokens.operator, sock=await small_receive_buffer(url), max_queue=2)
    try:
        term = await open_term(client)
        flood = f"yes fdflood-{uuid.uuid4().hex[:6]}"
        await term.send(f"{flood}\r")
        await eventually(lambda: processes_with(flood), 10, "the flood running")
        # From here the client reads nothing: the window fills, the worker stops reading SSH, SSH's
        # own window and the PTY fill, and `yes` blocks writing.
        yes = next(
            psutil.Process(pid) for pid in processes_with(flood) if psutil.Process(pid).name() == "yes"
        )
        pids = {"gateway": exec_stack.gateway.service.pid, "worker": exec_stack.worker.pid}
        await asyncio.sleep(2)  # the buffers along the way fill
        before = {name: rss(pid) for name, pid in pids.items()}
        written = yes.io_counters().write_chars
        await asyncio.sleep(4)  # what is measured: 4 s of `yes` is gigabytes without flow control
        held = yes.io_counters().write_chars - written
        grown = {name: rss(pid) - before[name] for name, pid in pids.items()}
        assert held < 1024 * 1024, f"yes wrote {held} bytes while nobody read"
        # All `yes` ever wrote is what the path holds: the window, SSH's window twice (in sshd or
        # asyncssh, and in the worker's buffer after a resume) and about 1 MiB of PTY, sockets and
        # the client's two frames. A worker that let SSH's window reopen over what asyncssh still
        # held took another window each time it resumed reading (5 to 21 MB here).
        total = yes.io_counters().write_chars
        assert total < WINDOW_CHARS + 2 * SSH_WINDOW + 2 * 1024 * 1024, f"yes wrote {total} bytes in all"
        # Bounded (noise, and what the allocator keeps); without flow control tens of MiB.
        assert all(growth < 32 * 1024 * 1024 for growth in grown.values()), grown
        await term.send("\x03")  # sent while the output is still backed up
        await eventually(lambda: not processes_with(flood), 10, "the flood stopped by Ctrl-C")
        await term.send("echo done-$((6*7))\r")
        before_drain = term.received
        await term.until("done-42", timeout=30)  # the backlog drains, then the shell answers
        # What was held back (at most what `yes` wrote, bounded above), not the seconds of flood
        # the host printed.
        assert term.received - before_drain < 64 * 1024 * 1024
    finally:
        await client.close()


async def test_a_worker_killed_mid_session_ends_the_terminal_within_10_s(
    tmp_path: Path, tokens: Tokens, fleet: Fleet, shell_host: OpenSshd
) -> None:
    with private_stack(tmp_path, tokens, fleet, "w-term-kill") as stack:
        await workers_alive(stack.gateway.url, tokens.operator)
        client = await WsClient.open(stack.gateway.ws_url, tokens.operator)
        try:
            term = await open_term(client)
            nap = marker_sleep()
            await term.send(f"{nap}\r")
            await eventually(lambda: processes_with(nap), 10, "the command running")
            stack.worker.kill()
            closed = await term.closed(timeout=10)
            assert closed["exit_code"] is None and "w-term-kill stopped answering" in closed["reason"]
            # The dead worker's connection dropped: sshd hung up the shell and what ran in it.
            await eventually(lambda: not processes_with(nap), 10, "the command gone with its worker")
        finally:
            await client.close()


async def test_a_gateway_killed_mid_session_ends_its_shells_on_the_host(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd, tmp_path: Path
) -> None:
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        tmp_path,
        tokens.file,
        name="gateway-term-kill",
        FLEETDECK_JOB_KEY_FILE=exec_stack.users.job_key,
    )
    try:
        await workers_alive(gateway.url, tokens.operator)
        # A user of its own: a dead gateway's terminals count toward their user's limit a while.
        token = add_token(tokens.file, f"orphaned-{uuid.uuid4().hex[:6]}", "operator")
        client = await WsClient.open(gateway.ws_url, token)
        term = await open_term(client)
        nap = marker_sleep()
        await term.send(f"{nap}\r")
        await eventually(lambda: processes_with(nap), 10, "the command running")
        gateway.service.kill()  # no close reaches the worker: only the gateway's beats stop
        # The worker ends a terminal once its gateway has been silent for GATEWAY_LOST_AFTER,
        # noticed at its next beat; the PTY hangs up, ending the shell and what runs in it.
        within = GATEWAY_LOST_AFTER + 2 * BEAT_SECONDS + 5
        await eventually(lambda: not processes_with(nap), within, "the command gone with its gateway")
        headers = {"Authorization": f"Bearer {tokens.operator}"}
        async with httpx.AsyncClient(base_url=exec_stack.gateway.url, headers=headers) as http:
            listed = (await http.get("/api/terms")).json()["terms"]
        ended = next(t for t in listed if t["id"] == term.id)
        assert ended["end"] is not None and ended["exit_code"] is None, ended
        assert ended["reason"] == "the gateway serving this terminal stopped answering", ended
        with contextlib.suppress(Exception):
            await client.close()
    finally:
        gateway.stop()


async def test_an_idle_terminal_ends_and_a_user_has_at_most_the_limit_open(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd, tmp_path: Path
) -> None:
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        tmp_path,
        tokens.file,
        name="gateway-term-idle",
        FLEETDECK_JOB_KEY_FILE=exec_stack.users.job_key,
        FLEETDECK_TERM_IDLE_TIMEOUT="3",
        FLEETDECK_TERM_MAX_PER_USER="1",
    )
    try:
        await workers_alive(gateway.url, tokens.operator)
        name = f"limited-{uuid.uuid4().hex[:6]}"
        client = await WsClient.open(gateway.ws_url, add_token(tokens.file, name, "operator"))
        try:
            term = await open_term(client)
            await client.send({"type": "term_open", "host": HOST, "ref": "second"})
            refused = await client.expect_type("error", ref="second")
            assert refused["code"] == "forbidden" and "FLEETDECK_TERM_MAX_PER_USER" in refused["message"]
            closed = await term.closed(timeout=10)
            assert "idle for 3 s" in closed["reason"], closed
            again = await open_term(client)  # the idle one no longer counts
            await client.send({"type": "term_close", "term": again.id})
            await again.closed()
        finally:
            await client.close()
    finally:
        gateway.stop()


async def test_the_per_user_limit_counts_terminals_on_every_gateway(
    exec_stack: ExecStack, tokens: Tokens, shell_host: OpenSshd, tmp_path: Path
) -> None:
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        tmp_path,
        tokens.file,
        name="gateway-term-limit",
        FLEETDECK_JOB_KEY_FILE=exec_stack.users.job_key,
        FLEETDECK_TERM_MAX_PER_USER="1",
    )
    token = add_token(tokens.file, f"two-gateways-{uuid.uuid4().hex[:6]}", "operator")
    try:
        await workers_alive(gateway.url, tokens.operator)
        first = await WsClient.open(exec_stack.gateway.ws_url, token)
        second = await WsClient.open(gateway.ws_url, token)
        try:
            elsewhere = await open_term(first)  # on the session's gateway
            await second.send({"type": "term_open", "host": HOST, "ref": "over"})
            refused = await second.expect_type("error", ref="over")
            assert refused["code"] == "forbidden", refused
            assert "has 1 terminals open" in refused["message"], refused
            assert "FLEETDECK_TERM_MAX_PER_USER" in refused["message"], refused
            await first.send({"type": "term_close", "term": elsewhere.id})
            await elsewhere.closed()  # its place is free on every gateway once this arrives
            here = await open_term(second)
            await second.send({"type": "term_close", "term": here.id})
            await here.closed()
        finally:
            await first.close()
            await second.close()
    finally:
        gateway.stop()


async def test_a_host_that_cannot_be_reached_or_verified_ends_the_terminal_with_exec_sentences(
    operator: WsClient,
) -> None:
    for host, words in (
        (UNKNOWN_HOST_KEY, "host key not verifiable"),
        (UNREACHABLE, "connection refused"),
    ):
        await operator.send({"type": "term_open", "host": host, "ref": f"bad-{host}"})
        closed = await operator.expect(functools.partial(has_ref, f"bad-{host}"), 30)
        assert closed["type"] == "term_closed" and closed["exit_code"] is None, closed
        assert words in closed["reason"] and f"@{host} port" in closed["reason"], closed


async def test_keystrokes_one_frame_each_are_not_rate_limited_like_other_frames(operator: WsClient) -> None:
    term = await open_term(operator)
    typed = "k" * 300  # fifteen seconds' worth of other frames, sent at once
    await term.send("echo ")
    for key in typed:
        await term.send(key)
    await term.send(" $((6*7))\r")
    await term.until(f"{typed} 42")
    assert not [f for f in operator.seen if f.get("type") == "error"]
