"""`fleetdeck shell HOST`: a terminal on one host through a gateway, in the terminal you type in."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import json
import os
import signal
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .exec_client import ws_url
from .exit_codes import EXIT_ENDED, EXIT_REFUSED, EXIT_UNREACHABLE
from .rawtty import raw_mode, window_size

READ_SIZE = 4096
MAX_INPUT = 4096  # characters per term_input (the server takes up to 16384)
PACE_SECONDS = 0.06  # at most about 16 frames a second; the gateway takes 20 a second per socket
# In raw mode Ctrl-C is a key for the remote shell; these still end the session (the terminal restored).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
REF = "cli"


def run_shell_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.token:
        parser.error("shell needs --token or FLEETDECK_TOKEN")
    try:
        return asyncio.run(run_shell(args.url, args.token, args.host))
    except KeyboardInterrupt:  # before the terminal opened
        _say("interrupted")
        return 130


def _say(message: str) -> None:
    print(f"fleetdeck shell: {message}", file=sys.stderr, flush=True)


async def run_shell(url: str, token: str, host: str, stdin: int = 0, stdout: int = 1) -> int:
    """Open the terminal, pass keys and output through until it ends; the exit code to use."""
    cols, rows = window_size(stdout if os.isatty(stdout) else stdin)
    try:
        async with connect(
            ws_url(url), additional_headers={"Authorization": f"Bearer {token}"}, max_size=16 * 1024 * 1024
        ) as ws:
            await ws.send(
                json.dumps({"type": "term_open", "host": host, "cols": cols, "rows": rows, "ref": REF})
            )
            opened = await _opened(ws)
            if isinstance(opened, int):
                return opened
            with raw_mode(stdin):
                ending = await Session(ws, opened, stdin, stdout).run()
            return _report(*ending)
    except InvalidStatus as exc:
        _say(f"the gateway refused the connection ({exc.response.status_code}): check the token and URL")
        return EXIT_REFUSED
    except ConnectionClosed:
        _say("the connection to the gateway closed")
        return EXIT_ENDED
    except OSError as exc:
        _say(f"cannot reach {url}: {exc.strerror or exc}")
        return EXIT_UNREACHABLE


async def _opened(ws: ClientConnection) -> str | int:
    """The terminal's id once open, or the exit code when it was refused or ended at once."""
    async for raw in ws:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "term_opened" and frame.get("ref") == REF:
            return str(frame["term"])
        if kind == "error" and frame.get("ref") == REF:
            _say(f"{frame.get('code')}: {frame.get('message')}")
            return EXIT_REFUSED
        if kind == "term_closed" and frame.get("ref") == REF:
            return _report(frame.get("exit_code"), str(frame.get("reason")))
    _say("the gateway closed the connection before the terminal opened")
    return EXIT_ENDED


def _report(exit_code: int | None, reason: str) -> int:
    if exit_code is not None:
        return exit_code
    _say(reason)
    return EXIT_ENDED


class Session:
    """One open terminal: stdin → term_input, SIGWINCH → term_resize, term_output → stdout."""

    def __init__(self, ws: ClientConnection, term: str, stdin: int, stdout: int) -> None:
        self._ws = ws
        self._term = term
        self._stdin = stdin
        self._stdout = stdout
        self._keys: asyncio.Queue[str | None] = asyncio.Queue()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ended: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()

    async def run(self) -> tuple[int | None, str]:
        """(exit status or None, reason) once the terminal ended, however it ended."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._stdin, self._read)
        loop.add_signal_handler(signal.SIGWINCH, self._resized)
        for stop in STOP_SIGNALS:
            loop.add_signal_handler(stop, self._end, 128 + stop, f"stopped by {stop.name}")
        tasks = [asyncio.ensure_future(self._send_keys()), asyncio.ensure_future(self._receive())]
        try:
            return await self._ended
        finally:
            loop.remove_reader(self._stdin)
            for sig in (signal.SIGWINCH, *STOP_SIGNALS):
                loop.remove_signal_handler(sig)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps({"type": "term_close", "term": self._term}))

    def _end(self, exit_code: int | None, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result((exit_code, reason))

    def _read(self) -> None:
        try:
            data = os.read(self._stdin, READ_SIZE)
        except OSError:
            data = b""
        if data:
            if text := self._decoder.decode(data):
                self._keys.put_nowait(text)
            return
        # End of input that is not a terminal: the shell gets an end-of-file (Ctrl-D) and nothing more.
        asyncio.get_running_loop().remove_reader(self._stdin)
        self._keys.put_nowait("\x04")

    def _resized(self) -> None:
        self._keys.put_nowait(None)  # in the same queue as the keys, so both keep their order

    async def _send_keys(self) -> None:
        loop = asyncio.get_running_loop()
        last = -PACE_SECONDS
        try:
            while True:
                first = await self._keys.get()
                # Key repeat or a mouse-reporting program can outrun the gateway's per-socket message
                # rate: what comes within PACE_SECONDS of the last frame goes together in the next.
                await asyncio.sleep(max(0.0, last + PACE_SECONDS - loop.time()))
                items = [first]
                while not self._keys.empty():
                    items.append(self._keys.get_nowait())
                for frame in self._frames(items):
                    await self._ws.send(json.dumps(frame))
                last = loop.time()
        except ConnectionClosed:
            self._end(None, "the connection to the gateway closed")

    def _frames(self, items: list[str | None]) -> list[dict[str, Any]]:
        """Keys joined into term_input frames and one resize where resizes happened, in their order."""
        frames: list[dict[str, Any]] = []
        keys = ""
        for item in [*items, ""]:
            if item:
                keys += item
                continue
            for at in range(0, len(keys), MAX_INPUT):
                frames.append({"type": "term_input", "term": self._term, "data": keys[at : at + MAX_INPUT]})
            keys = ""
            if item is None and not (frames and frames[-1]["type"] == "term_resize"):
                cols, rows = window_size(self._stdout if os.isatty(self._stdout) else self._stdin)
                frames.append({"type": "term_resize", "term": self._term, "cols": cols, "rows": rows})
        return frames

    async def _receive(self) -> None:
        try:
            async for raw in self._ws:
                frame = json.loads(raw)
                if frame.get("term") != self._term:
                    continue
                if frame.get("type") == "term_output":
                    self._write(str(frame["data"]).encode())
                elif frame.get("type") == "term_closed":
                    self._end(frame.get("exit_code"), str(frame.get("reason")))
                    return
        except ConnectionClosed:
            pass
        except OSError:
            self._end(None, "the output could not be written")
            return
        self._end(None, "the connection to the gateway closed")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._stdout, view)
            view = view[written:]
