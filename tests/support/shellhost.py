"""A stock OpenSSH sshd for terminal tests: a login shell with a prompt tests can wait for, on the
fleet's port (so the fleet's worker reaches it) and in the fleet's known_hosts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from testbed.opensshd import OpenSshd, start_sshd
from tests.support.stacks import Fleet

PROMPT = "fd$ "


@contextlib.contextmanager
def shell_host(workdir: Path, address: str, fleet: Fleet) -> Iterator[OpenSshd]:
    home = workdir / "home"
    home.mkdir(parents=True)
    (home / ".profile").write_text(f"PS1='{PROMPT}'; export PS1\n")
    sshd = start_sshd(
        workdir / "sshd",
        address,
        fleet.client_key.with_suffix(".pub"),
        workdir / "commands.jsonl",
        fleet.port,
        record=False,
        home=home,
    )
    with fleet.known_hosts.open("a") as handle:
        handle.write(sshd.known_hosts_line)
    try:
        yield sshd
    finally:
        sshd.stop()
