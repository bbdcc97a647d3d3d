"""The client processes as a benchmark drives them: one `python -m bench.wsclients` process
(`ClientProcess`) over its stdin and stdout, and the processes of one spread of clients (`Spread`)."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from testbed.procs import ROOT


class Spread(list[tuple["ClientProcess", int, int]]):
    """Client processes as `Stack.spread` started them: (process, its clients, its URL's index)."""

    @property
    def processes(self) -> list[ClientProcess]:
        return [process for process, _, _ in self]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process, _, _ in self]

    def send(self, message: dict[str, Any]) -> None:
        for process, _, _ in self:
            process.send(message)

    def gather(self, event: str, timeout: float) -> list[dict[str, Any] | None]:
        """Every process's next `event`; None from one that did not say it in time."""
        # A `ready` comes once each client connected or failed: one missing counts them all failed.
        answers: list[dict[str, Any] | None] = []
        for process, clients, _ in self:
            try:
                answers.append(process.expect(event, timeout))
            except RuntimeError as exc:
                print(f"note: {exc}")
                failed = {"ready": 0, "failed": clients, "failures": {"no `ready` in time": clients}}
                answers.append({"event": "ready", **failed} if event == "ready" else None)
        return answers


class ClientProcess:
    """One `python -m bench.wsclients` process: many WebSocket clients, driven over its stdin and
    stdout with one JSON object a line."""

    def __init__(self, args: list[str], log_dir: Path, name: str) -> None:
        self.name = name
        self._log = (log_dir / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.wsclients", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next message from the process, which must be `event`; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"{self.name} exited (code {self.proc.wait()}); see its log")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == "error":
                raise RuntimeError(f"{self.name}: {message.get('error')}")
            if message.get("event") == event:
                return message
        raise RuntimeError(f"{self.name}: no {event!r} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send({"cmd": "close"})
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
