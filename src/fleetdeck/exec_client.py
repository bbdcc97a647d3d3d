"""`fleetdeck exec`: run a command through a gateway and print one line per host as it finishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fleetdeck_common.follow import JobFollower, Verdict
from fleetdeck_common.messages import Done, Result

from .exec_output import JsonOutput, Output, TextOutput
from .exit_codes import (
    EXIT_ALL_OK,
    EXIT_GAVE_UP,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_SOME_FAILED,
    EXIT_STDOUT_CLOSED,
    EXIT_UNREACHABLE,
)
from .stdout_watch import StdoutClosed, silence_stdout, until_reader_gone

QUEUED_HINT_SECONDS = 10.0
HOSTS_PER_WAVE = 64  # the worker's default concurrency: how the default deadline is sized


def all_succeeded(done: Done, hosts: int) -> bool:
    """Every host of the job reported `ok`: none failed, none is missing."""
    return done.error is None and done.summary.get("ok", 0) == hosts and set(done.summary) <= {"ok"}


@dataclass
class ExecState:
    follower: JobFollower | None = None  # set once the gateway has queued the job
    hosts: int = 0
    workers: int | None = None  # alive when we connected, as the gateway's hello said
    done: Done | None = None
    results: list[Result] = field(default_factory=list)
    hinted: bool = False
    owns_job: bool = True  # Ctrl-C cancels it (not when only watching it)
    interrupted: bool = False  # Ctrl-C: the job is cancelled, its last results still shown
    cancel_sent: bool = False
    ws: Any = None  # the connection in use, to send the cancel on

    @property
    def job(self) -> str | None:
        return self.follower.job if self.follower else None


def ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    return base if base.endswith("/ws") else base + "/ws"


async def _session(
    url: str, token: str, first: dict[str, Any], state: ExecState, output: Output
) -> int | None:
    """One connection; returns an exit code when finished, None to reconnect."""
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=16 * 1024 * 1024
    ) as ws:
        state.ws, state.cancel_sent = ws, False
        await ws.send(json.dumps(first))
        await send_cancel(state)
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), QUEUED_HINT_SECONDS)
            except TimeoutError:
                if state.job is not None and state.workers != 0:
                    running = state.hosts - len(state.results)
                    print(f"running on {running} hosts, {len(state.results)} finished", file=sys.stderr)
                continue
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "error" and frame.get("ref") == "cli":
                print(f"fleetdeck exec: {frame['code']}: {frame['message']}", file=sys.stderr)
                return EXIT_REFUSED
            if kind == "hello":
                state.workers = frame.get("workers")
            elif kind == "job" and frame.get("ref") == "cli" and not state.hosts:
                state.follower = state.follower or JobFollower(frame["job"])
                state.hosts = int(frame["hosts"])
                print(f"job {state.job}: {frame['hosts']} hosts", file=sys.stderr)
                await send_cancel(state)  # Ctrl-C came before the job did
                if state.workers == 0 and not state.hinted:
                    state.hinted = True
                    until = frame.get("queued_until")
                    wait = f" for {until - frame['ts']:.0f}s" if until else ""
                    print(
                        f"fleetdeck exec: no exec worker is running; the job waits in the queue{wait}, "
                        "then expires without running",
                        file=sys.stderr,
                    )
            elif kind in ("result", "done") and state.follower and frame.get("job") == state.job:
                parsed = Result.model_validate(frame) if kind == "result" else Done.model_validate(frame)
                verdict = state.follower.offer(parsed)
                if verdict is Verdict.GAP:
                    return None  # something went missing on the way: reconnect and watch from last_seq
                if verdict is Verdict.SKIP:
                    continue
                if isinstance(parsed, Result):
                    state.results.append(parsed)
                    output.result(parsed)
                else:
                    state.done = parsed
                    output.done(parsed)
                    if state.interrupted:
                        return EXIT_INTERRUPTED
                    return EXIT_ALL_OK if all_succeeded(parsed, state.hosts) else EXIT_SOME_FAILED


async def send_cancel(state: ExecState) -> None:
    """After Ctrl-C, cancel the job once on each connection (the gateway answers with its frame)."""
    if state.interrupted and state.job is not None and state.ws is not None and not state.cancel_sent:
        state.cancel_sent = True
        with contextlib.suppress(ConnectionClosed, OSError):
            await state.ws.send(json.dumps({"type": "cancel", "job": state.job, "ref": "cli-cancel"}))


async def run_exec(
    url: str,
    token: str,
    targets: str,
    command: str,
    timeout: float,
    out: TextIO = sys.stdout,
    retries: int = 10,
    as_json: bool = False,
    deadline: float | None = None,
    rolling: dict[str, str] | None = None,
    watch: str | None = None,
    copy: dict[str, str] | None = None,
) -> int:
    """Run the job (or `watch` one already queued) and follow it to its end, or give up after
    `deadline` seconds (default: long enough for every host to time out in waves of 64, plus five
    minutes). With `copy` (an uploaded file's `copy` object) the job copies that file instead of
    running `command`. Ctrl-C cancels the job and shows its last results; a second one exits at once. A
    closed stdout ends it at once, quietly (the job goes on)."""
    state = ExecState(follower=JobFollower(watch) if watch else None, owns_job=watch is None)
    output: Output = JsonOutput(out) if as_json else TextOutput(out)
    what: dict[str, Any] = {"command": command} if copy is None else {"copy": copy}
    request = {"targets": targets, **what, "timeout": timeout, **(rolling or {})}
    follow = _follow(url, token, request, state, output, retries)
    limit = deadline
    if limit is None:
        limit = timeout * 2 + 300.0  # until the job frame says how many hosts there are
    task = asyncio.ensure_future(follow)
    reader = asyncio.ensure_future(until_reader_gone(out))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread: no handler
        loop.add_signal_handler(signal.SIGINT, _interrupt, state)
    try:
        return await _wait(task, reader, state, deadline, limit, timeout)
    except StdoutClosed:
        silence_stdout()
        return EXIT_STDOUT_CLOSED
    finally:
        reader.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def _interrupt(state: ExecState) -> None:
    """Ctrl-C: cancel the job and wait for its last results; the second time, exit at once."""
    if state.interrupted or not state.owns_job or (state.job is None and state.ws is None):
        sys.stderr.write("\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    state.interrupted = True
    job = f"job {state.job}" if state.job else "the job"
    print(
        f"\nfleetdeck: cancelling {job}; its hosts' last results follow (Ctrl-C again exits now)",
        file=sys.stderr,
    )
    asyncio.ensure_future(send_cancel(state))  # noqa: RUF006 (it ends with the connection)


async def _wait(
    task: asyncio.Future[int],
    reader: asyncio.Future[None],
    state: ExecState,
    deadline: float | None,
    limit: float,
    timeout: float,
) -> int:
    started = asyncio.get_running_loop().time()
    while not task.done():
        if reader.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise StdoutClosed
        waited = asyncio.get_running_loop().time() - started
        if deadline is None and state.hosts:
            limit = timeout * -(-state.hosts // HOSTS_PER_WAVE) + 300.0
        if waited >= limit:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            job = f" (job {state.job} may still be running: GET /api/jobs/{state.job})" if state.job else ""
            print(f"fleetdeck exec: gave up waiting after {limit:.0f}s{job}", file=sys.stderr)
            return EXIT_GAVE_UP
        waiting: set[asyncio.Future[Any]] = {task, reader}
        await asyncio.wait(waiting, timeout=min(1.0, limit - waited), return_when=asyncio.FIRST_COMPLETED)
    return task.result()


async def _follow(
    url: str, token: str, request: dict[str, Any], state: ExecState, output: Output, retries: int
) -> int:
    attempt = 0
    while True:
        first: dict[str, Any] = (
            {"type": "exec", **request, "ref": "cli"}
            if state.follower is None
            else {"type": "watch", "job": state.follower.job, "after": state.follower.last_seq, "ref": "cli"}
        )
        try:
            code = await _session(ws_url(url), token, first, state, output)
            if code is not None:
                return code
        except InvalidStatus as exc:
            print(
                f"fleetdeck exec: the gateway refused the connection ({exc.response.status_code}): "
                "check the token and URL",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            if state.job is None and attempt == 0 and isinstance(exc, OSError):
                print(f"fleetdeck exec: cannot reach {url}: {exc}", file=sys.stderr)
                return EXIT_UNREACHABLE
            print(f"fleetdeck exec: connection lost ({exc}); resuming", file=sys.stderr)
        attempt += 1
        if attempt > retries:
            print("fleetdeck exec: gave up reconnecting", file=sys.stderr)
            return EXIT_UNREACHABLE
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
