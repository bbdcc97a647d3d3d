"""`fleetdeck exec`: run a command through a gateway and print one line per host as it finishes."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fleetdeck_common.follow import JobFollower, Verdict
from fleetdeck_common.messages import STATUS_TONES, Done, Result, Tone, dump

QUEUED_HINT_SECONDS = 10.0
EXIT_ALL_OK = 0
EXIT_SOME_FAILED = 1
EXIT_REFUSED = 2
EXIT_UNREACHABLE = 3
EXIT_GAVE_UP = 4
HOSTS_PER_WAVE = 64  # the worker's default concurrency: how the default deadline is sized

_ANSI: dict[Tone, str] = {"good": "32", "bad": "31", "slow": "33", "unreachable": "35", "muted": "90"}


def _paint(text: str, status: str, colour: bool) -> str:
    tone = STATUS_TONES.get(status)  # type: ignore[call-overload]
    return f"\x1b[{_ANSI[tone] if tone else '0'}m{text}\x1b[0m" if colour else text


def _printable(text: str) -> str:
    """Output from hosts must not drive the operator's terminal: escape control characters."""
    return "".join(ch if ch.isprintable() or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)


def format_result(result: Result, colour: bool) -> str:
    first = (result.stdout or result.stderr or result.error or "").strip().splitlines()
    code = "-" if result.exit_code is None else str(result.exit_code)
    line = f"{result.host:<16} {result.status:<11} exit {code:<4} {result.duration_ms:>6}ms"
    detail = _printable(first[0][:200]) if first else ""
    return f"{_paint(line, result.status, colour)}  {detail}".rstrip()


def format_summary(done: Done, colour: bool) -> list[str]:
    counts = ", ".join(f"{status} {count}" for status, count in done.summary.items())
    lines = [f"--- {sum(done.summary.values())} hosts in {done.duration_ms / 1000:.1f}s: {counts}"]
    if done.error:
        lines.append(_paint(f"job error: {_printable(done.error)}", "error", colour))
    for group in done.groups:
        header = f"{group.hosts} ({group.count}) {group.status}"
        lines.append(_paint(header, group.status, colour))
        output = group.output.splitlines()
        lines.extend(f"    {_printable(line)}" for line in output[:20])
        if len(output) > 20 or group.output_truncated:
            lines.append(f"    … (more output: GET /api/jobs/{done.job})")
    if done.retry_targets:
        lines.append(f"re-run where it did not succeed: {done.retry_targets}")
    return lines


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


class TextOutput:
    """A line per host as it finishes, then the grouped summary; colours on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._colour = out.isatty()

    def result(self, result: Result) -> None:
        print(format_result(result, self._colour), file=self._out, flush=True)

    def done(self, done: Done) -> None:
        for line in format_summary(done, self._colour):
            print(line, file=self._out)


class JsonOutput:
    """One JSON object per line: every `result` frame, then the `done` frame (for scripts)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def result(self, result: Result) -> None:
        print(dump(result), file=self._out, flush=True)

    def done(self, done: Done) -> None:
        print(dump(done), file=self._out, flush=True)


Output = TextOutput | JsonOutput


async def _session(
    url: str, token: str, first: dict[str, Any], state: ExecState, output: Output
) -> int | None:
    """One connection; returns an exit code when finished, None to reconnect."""
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=16 * 1024 * 1024
    ) as ws:
        await ws.send(json.dumps(first))
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), QUEUED_HINT_SECONDS)
            except TimeoutError:
                if state.job is not None and not state.results and not state.hinted:
                    state.hinted = True
                    print(
                        f"fleetdeck exec: no host has reported after {QUEUED_HINT_SECONDS:.0f}s; "
                        "is an exec worker running?",
                        file=sys.stderr,
                    )
                continue
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "error" and frame.get("ref") == "cli":
                print(f"fleetdeck exec: {frame['code']}: {frame['message']}", file=sys.stderr)
                return EXIT_REFUSED
            if kind == "hello":
                state.workers = frame.get("workers")
            elif kind == "job" and frame.get("ref") == "cli" and state.follower is None:
                state.follower = JobFollower(frame["job"])
                state.hosts = int(frame["hosts"])
                print(f"job {state.job}: {frame['hosts']} hosts", file=sys.stderr)
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
                    return EXIT_ALL_OK if all_succeeded(parsed, state.hosts) else EXIT_SOME_FAILED


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
) -> int:
    """Run the job and follow it to its end, or give up after `deadline` seconds (default: long
    enough for every host to time out in waves of 64, plus five minutes)."""
    state = ExecState()
    output: Output = JsonOutput(out) if as_json else TextOutput(out)
    follow = _follow(url, token, targets, command, timeout, state, output, retries)
    limit = deadline
    if limit is None:
        limit = timeout * 2 + 300.0  # until the job frame says how many hosts there are
    task = asyncio.ensure_future(follow)
    started = asyncio.get_running_loop().time()
    while not task.done():
        waited = asyncio.get_running_loop().time() - started
        if deadline is None and state.hosts:
            limit = timeout * -(-state.hosts // HOSTS_PER_WAVE) + 300.0
        if waited >= limit:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            job = f" (job {state.job} may still be running: GET /api/jobs/{state.job})" if state.job else ""
            print(f"fleetdeck exec: gave up waiting after {limit:.0f}s{job}", file=sys.stderr)
            return EXIT_GAVE_UP
        await asyncio.wait({task}, timeout=min(1.0, limit - waited))
    return task.result()


async def _follow(
    url: str,
    token: str,
    targets: str,
    command: str,
    timeout: float,
    state: ExecState,
    output: Output,
    retries: int,
) -> int:
    attempt = 0
    while True:
        first: dict[str, Any] = (
            {
                "type": "exec",
                "targets": targets,
                "command": command,
                "timeout": timeout,
                "ref": "cli",
            }
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
