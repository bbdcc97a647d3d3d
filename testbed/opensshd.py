"""Real OpenSSH `sshd` instances bound to a loopback address, recording every command they run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from testbed.procs import Service, free_port, wait_until

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
)

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
    workdir: Path,
    address: str,
    client_public_key: Path,
    log: Path,
    port: int | None = None,
    *,
    record: bool = True,
    log_level: str = "ERROR",
    home: Path | None = None,
    sftp_root: Path | None = None,
) -> OpenSshd:
    """An sshd on `address` (a new host key unless `workdir` has one). `record=False` runs commands
        as a stock sshd does (the login shell, no ForceCommand; `log` stays empty). `log_level="VERBOSE"`
        logs each login ("Accepted publickey"). `home` sets HOME for sessions, so the login shell reads
        that folder's start-up files instead of the account's own (this machine's may be slow). SFTP is
    served (through the recorder when recording); `sftp_root` makes the host SFTP-only, jailed in that
    folder (root-owned, not writable by group or others), so hosts can differ in what files they have."""
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
        f"X11Forwarding no\nLogLevel {log_level}\n"
        + (f"ForceCommand {recorder}\n" if record and sftp_root is None else "")
        + (f"SetEnv HOME={home}\n" if home is not None else "")
        + _sftp_lines(sftp_root)
    )
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    service = Service(f"sshd-{address}", [SSHD, "-D", "-e", "-f", str(config)], {}, workdir)

    def listening() -> bool:
        with socket.create_connection((address, port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")

    wait_until(listening, 10, what=f"sshd on {address}:{port}")
    public = (workdir / "host_ed25519.pub").read_text().split()
    return OpenSshd(address, port, service, f"[{address}]:{port} {public[0]} {public[1]}\n")


def _sftp_lines(root: Path | None) -> str:
    if root is not None:
        return f"Subsystem sftp internal-sftp\nChrootDirectory {root}\n"
    server = next((path for path in SFTP_SERVERS if Path(path).exists()), SFTP_SERVERS[0])
    return f"Subsystem sftp {server}\n"


def client_key(workdir: Path) -> tuple[Path, Path]:
    """A new ed25519 client key pair in `workdir`: (private key, public key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    private = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    return private, workdir / "id_ed25519.pub"


def logins(sshd: OpenSshd) -> int:
    """Logins this sshd accepted so far, restarts included (needs log_level VERBOSE or INFO)."""
    return sshd.service.log().count("Accepted publickey")


def established(address: str, port: int) -> int:
    """TCP connections established to address:port right now, from the kernel's table."""
    want = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "01":  # local address, state ESTABLISHED
            count += 1
    return count


def running_as_root() -> bool:
    return os.geteuid() == 0
