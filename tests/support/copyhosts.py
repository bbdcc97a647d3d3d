"""OpenSSH hosts on loopback for copy tests: some sharing this machine's file system (as NFS homes
would), one SFTP-only host jailed in a folder of its own (under /run, removed at the end)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fleetdeck_worker.sshlogin import SshOptions
from fleetdeck_worker.sshpool import SshPool
from testbed.opensshd import OpenSshd, client_key, start_sshd
from testbed.procs import free_port


@dataclass
class CopyHosts:
    servers: dict[str, OpenSshd]
    key: Path
    known_hosts: Path
    port: int
    jail: Path  # the jailed host's `/`

    def options(self, pool: SshPool | None = None) -> SshOptions:
        return SshOptions(
            user="root",
            port=self.port,
            key=self.key,
            known_hosts=self.known_hosts,
            connect_timeout=10,
            pool=pool,
        )


@contextlib.contextmanager
def copy_hosts(workdir: Path, shared: tuple[str, ...], jailed: str) -> Iterator[CopyHosts]:
    """sshd on each `shared` address and on `jailed` (whose `/` holds an empty `srv`), one port."""
    key, public = client_key(workdir / "client")
    port = free_port(shared[0])
    # sshd jails only in a folder whose every parent is root's and writable by nobody else: not /tmp.
    jail = Path(tempfile.mkdtemp(prefix="fleetdeck-jail-", dir="/run"))
    (jail / "srv").mkdir()
    jail.chmod(0o755)
    servers: dict[str, OpenSshd] = {}
    try:
        for address in (*shared, jailed):
            servers[address] = start_sshd(
                workdir / address,
                address,
                public,
                workdir / "commands.jsonl",
                port,
                record=False,
                home=workdir / "home",
                sftp_root=jail if address == jailed else None,
            )
        known = workdir / "known_hosts"
        known.write_text("".join(s.known_hosts_line for s in servers.values()))
        yield CopyHosts(servers, key, known, port, jail)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(jail, ignore_errors=True)
