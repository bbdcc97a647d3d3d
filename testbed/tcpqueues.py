"""What waits in the kernel on this machine's established TCP connections (`/proc/net/tcp`): for
each, its send queue (bytes not yet acknowledged by the peer) and receive queue (bytes not yet
read by its own process). Linux only; used by tests and benchmarks on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

ESTABLISHED = "01"


@dataclass(frozen=True)
class TcpQueue:
    local_port: int
    remote_port: int
    send_queue: int
    receive_queue: int


def established() -> Iterator[TcpQueue]:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) < 5 or fields[3] != ESTABLISHED:
                    continue
                send, receive = fields[4].split(":")
                yield TcpQueue(_port(fields[1]), _port(fields[2]), int(send, 16), int(receive, 16))


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)
