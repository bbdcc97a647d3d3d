"""A fleet of real SSH servers (asyncssh) on loopback addresses, run as its own process.

Every good host runs the command it is given with /bin/sh (FLEET_HOST set to its address) and
records it in commands.jsonl before running it, so tests can prove no host ran a command twice.
Special hosts: `reject` refuses our key, `unknown_key` is missing from known_hosts,
`changed_key` presents a host key other than the one known_hosts lists for it,
`blackhole` accepts TCP and never answers. An unreachable host is an address nobody listens on.

    python -m testbed.sshfleet DIR --first 127.0.0.2 --count 100 [--reject ADDR ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import asyncssh

KINDS = ("reject", "unknown_key", "changed_key", "blackhole")


class Fleet:
    def __init__(self, workdir: Path, client_key: asyncssh.SSHKey) -> None:
        self.workdir = workdir
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.stranger_key = asyncssh.generate_private_key("ssh-ed25519")
        self.authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.nobody = asyncssh.import_authorized_keys(
            asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        )
        self.log = (workdir / "commands.jsonl").open("a", buffering=1)

    def record(self, host: str, command: str) -> None:
        self.log.write(json.dumps({"host": host, "command": command, "ts": time.time()}) + "\n")

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        host = process.get_extra_info("sockname")[0]
        command = process.command or ""
        self.record(host, command)
        child = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FLEET_HOST": host},
            start_new_session=True,
        )

        async def pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
            while chunk := await source.read(65536):
                sink.write(chunk)

        assert child.stdout is not None and child.stderr is not None
        running = asyncio.ensure_future(
            asyncio.gather(
                pump(child.stdout, process.stdout), pump(child.stderr, process.stderr), child.wait()
            )
        )
        closed: asyncio.Future[Any] = asyncio.ensure_future(process.channel.wait_closed())
        await asyncio.wait([running, closed], return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            # The client went away (cancelled, timed out, or its worker died): stop the command.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
            return
        closed.cancel()
        process.exit(child.returncode or 0)

    async def serve(
        self, address: str, port: int, kind: str
    ) -> asyncio.AbstractServer | asyncssh.SSHAcceptor:
        if kind == "blackhole":

            async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read()  # never say anything

            return await asyncio.start_server(silent, address, port)
        return await asyncssh.create_server(
            asyncssh.SSHServer,
            address,
            port,
            server_host_keys=[self.stranger_key if kind == "changed_key" else self.host_key],
            authorized_client_keys=self.nobody if kind == "reject" else self.authorized,
            process_factory=self.handle,
            encoding=None,
            allow_scp=False,
            line_editor=False,
            keepalive_interval=0,
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--first", default="127.0.0.2")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--client-key", type=Path, required=True, help="public key the hosts accept")
    for kind in KINDS:
        parser.add_argument(f"--{kind.replace('_', '-')}", action="append", default=[], dest=kind)
    args = parser.parse_args()
    fleet = Fleet(args.workdir, asyncssh.read_public_key(str(args.client_key)))
    first = ipaddress.IPv4Address(args.first)
    good = [str(first + i) for i in range(args.count)]
    special = [(a, k) for k in KINDS for a in getattr(args, k)]
    for _attempt in range(20):
        port = random.randint(20000, 60000)
        servers: list[asyncio.AbstractServer | asyncssh.SSHAcceptor] = []
        try:
            for address in good:
                servers.append(await fleet.serve(address, port, "good"))
            for address, kind in special:
                servers.append(await fleet.serve(address, port, kind))
            break
        except OSError:
            for server in servers:
                server.close()
    else:
        raise SystemExit("no free port for the fleet")
    public = fleet.host_key.export_public_key().decode().strip()
    listed = good + [a for a, k in special if k != "unknown_key"]
    known = "".join(f"[{a}]:{port} {public}\n" for a in listed)
    (args.workdir / "known_hosts").write_text(known)
    # Written whole, then renamed: a reader never sees a half-written file.
    partial = args.workdir / "ready.json.partial"
    partial.write_text(json.dumps({"port": port, "hosts": good}))
    partial.rename(args.workdir / "ready.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
