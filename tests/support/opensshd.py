"""Real OpenSSH `sshd` instances bound to a loopback address, recording every command they run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import Service, free_port, wait_until

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

_RECORDER = """#!{python}
import json, os, sys, time
command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
with open({log!r}, "a") as log:
    log.write(json.dumps({{"host": {host!r}, "command": command, "ts": time.time()}}) + "\\n")
os.environ["FLEET_HOST"] = {host!r}
os.execv("/bin/sh", ["/bin/sh", "-c", command])
"""


@dataclass
class OpenSshd:
    address: str
    port: int
    service: Service
    known_hosts_line: str

    def stop(self) -> None:
        self.service.stop()


def start_sshd(
    workdir: Path, address: str, client_public_key: Path, log: Path, port: int | None = None
) -> OpenSshd:
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    host_key = workdir / "host_ed25519"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_public_key.read_text())
    recorder = workdir / "record-command"
    recorder.write_text(_RECORDER.format(python=sys.executable, log=str(log), host=address))
    recorder.chmod(0o755)
    port = port or free_port(address)
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {address}:{port}\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {workdir / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowAgentForwarding no\n"
        f"X11Forwarding no\nForceCommand {recorder}\nLogLevel ERROR\n"
    )
    service = Service(f"sshd-{address}", [SSHD, "-D", "-e", "-f", str(config)], {}, workdir)

    def listening() -> bool:
        with socket.create_connection((address, port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")

    wait_until(listening, 10, what=f"sshd on {address}:{port}")
    public = (workdir / "host_ed25519.pub").read_text().split()
    return OpenSshd(address, port, service, f"[{address}]:{port} {public[0]} {public[1]}\n")


def running_as_root() -> bool:
    return os.geteuid() == 0
