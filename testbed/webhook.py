"""A webhook receiver on loopback for tests and benchmarks: it records every POST (its JSON body
and when it arrived) and answers as told (a status per request in turn, or hanging until
released)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # an answer that is no answer: the request is held until `release()` or `stop()`


@dataclass(frozen=True)
class Received:
    path: str
    body: Any
    at: float  # time.time() when the request arrived


class WebhookReceiver:
    """Answers with `answers` in turn (200 once they run out); `received` holds what came."""

    def __init__(self, answers: list[int] | None = None, host: str = "127.0.0.1") -> None:
        self.answers = list(answers or [])
        self.received: list[Received] = []
        self.attempts = 0  # every request, answered or not
        self._changed = threading.Condition()
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.time()
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        with self._changed:
            self.attempts += 1
            answer = self.answers.pop(0) if self.answers else 200
            if 200 <= answer < 300:
                self.received.append(Received(request.path, json.loads(raw), arrived))
            self._changed.notify_all()
        if answer == HANG:
            self._released.wait()
            return
        request.send_response(answer)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def wait_for(self, count: int, timeout: float, attempts: bool = False) -> list[Received]:
        """Block until `count` POSTs were taken (or, with `attempts`, made at all); what was taken."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: (self.attempts if attempts else len(self.received)) >= count, timeout
            )
            if not done:
                raise TimeoutError(
                    f"{len(self.received)} POSTs taken, {self.attempts} made in {timeout} s; wanted {count}"
                )
            return list(self.received)

    def release(self) -> None:
        """Let every hanging request go (unanswered: the connection closes)."""
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
