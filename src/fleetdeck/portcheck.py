"""Is the gateway's port free, and if not, which program holds it (Linux: /proc/net/tcp and
/proc/PID/fd; other users' processes can only be named by their owner)."""

from __future__ import annotations

import errno
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"  # TCP state in /proc/net/tcp


@dataclass(frozen=True)
class Listener:
    inode: int
    uid: int


def listeners(port: int, tables: list[str]) -> list[Listener]:
    """The listening sockets on `port` in the text of /proc/net/tcp-style tables."""
    found = []
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                found.append(Listener(inode=int(fields[9]), uid=int(fields[7])))
    return found


def _tables(proc: Path) -> list[str]:
    texts = []
    for name in ("tcp", "tcp6"):
        try:
            texts.append((proc / "net" / name).read_text())
        except OSError:
            continue
    return texts


def _holder(inodes: set[int], proc: Path) -> tuple[int, str] | None:
    """The first process (pid, command line) with one of these sockets open, among those we may see."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                    # Paths by their last part: short, and the pid is there for the rest.
                    short = " ".join(os.path.basename(w) if w.startswith("/") else w for w in argv)
                    command = " ".join(short.split()) or (entry / "comm").read_text().strip()
                    return int(entry.name), command
        except OSError:  # gone meanwhile, or another user's
            continue
    return None


def holder_description(port: int, proc: Path = Path("/proc")) -> str | None:
    """Who listens on `port`: 'pid 1234 (python3 -m http.server 8000)', 'a process of user bob', or None."""
    found = listeners(port, _tables(proc))
    if not found:
        return None
    held = _holder({listener.inode for listener in found}, proc)
    if held is not None:
        pid, command = held
        if len(command) > 100:
            command = command[:97] + "..."
        return f"pid {pid} ({command})"
    try:
        user = pwd.getpwuid(found[0].uid).pw_name
    except KeyError:
        user = f"uid {found[0].uid}"
    return f"a process of user {user}"


def port_problem(host: str, port: int) -> str | None:
    """Why the gateway could not listen on host:port, naming the program that holds it; None if it can.

    Binds as uvicorn will (SO_REUSEADDR, so connections of a previous run in TIME_WAIT do not count)."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            if exc.errno != errno.EADDRINUSE:
                return f"cannot listen on {address}: {exc.strerror or exc}"
            holder = holder_description(port)
            by = f" by {holder}" if holder else ""
            return (
                f"{address} is already in use{by}; stop it, or choose another port "
                "with --port or FLEETDECK_PORT"
            )
    return None
