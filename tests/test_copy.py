"""Copy jobs against real OpenSSH sshd on loopback: the file arrives whole with its mode, nothing
temporary is left, a reader never sees half a file, and each host's failure is its own sentence.

Three hosts share this machine's file system (as NFS homes would); a fourth is SFTP-only, jailed
in a folder of its own, so one job can succeed on some hosts and fail on another.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdeck_common.messages import FileCopy, Outcome
from fleetdeck_worker.sftpcopy import copy_to_host
from fleetdeck_worker.sshpool import SshPool
from tests.support.copyhosts import CopyHosts, copy_hosts
from tests.support.waiting import eventually

pytestmark = [pytest.mark.ssh, pytest.mark.xdist_group("copy_hosts")]

SHARED = ("127.0.4.1", "127.0.4.2", "127.0.4.3")
JAILED = "127.0.4.4"
FILE_ID = "0" * 32  # copy_to_host is given the bytes; the id only travels with the job


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CopyHosts]:
    with copy_hosts(tmp_path_factory.mktemp("copy"), SHARED, JAILED) as started:
        yield started


def copy_to_all(
    hosts: CopyHosts,
    addresses: tuple[str, ...],
    copy: FileCopy,
    data: bytes,
    cancel: asyncio.Event | None = None,
) -> dict[str, Outcome]:
    async def run() -> dict[str, Outcome]:
        pool = SshPool()
        try:
            stop = cancel or asyncio.Event()
            outcomes = await asyncio.gather(
                *(copy_to_host(a, copy, data, 30, hosts.options(pool), stop) for a in addresses)
            )
            return dict(zip(addresses, outcomes, strict=True))
        finally:
            await pool.close()

    return asyncio.run(run())


def test_a_copy_to_hosts_sharing_a_file_system_lands_whole_with_its_mode(
    hosts: CopyHosts, tmp_path: Path
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    dest = folder / "app.conf"
    dest.write_bytes(b"old contents\n")
    data = os.urandom(3 * 1024 * 1024 + 7)
    outcomes = copy_to_all(hosts, SHARED, FileCopy(file=FILE_ID, dest=str(dest), mode="0640"), data)
    assert {a: (o.status, o.error) for a, o in outcomes.items()} == {a: ("ok", None) for a in SHARED}
    assert dest.read_bytes() == data
    assert dest.stat().st_mode & 0o7777 == 0o640
    assert sorted(p.name for p in folder.iterdir()) == ["app.conf"]  # no temporary file left


def test_a_reader_sees_the_old_file_or_the_new_one_never_half(hosts: CopyHosts, tmp_path: Path) -> None:
    dest = tmp_path / "big.bin"
    old = os.urandom(4 * 1024 * 1024)
    dest.write_bytes(old)
    new = os.urandom(16 * 1024 * 1024)
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(hashlib.sha256(dest.read_bytes()).hexdigest())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        outcomes = copy_to_all(hosts, SHARED[:1], FileCopy(file=FILE_ID, dest=str(dest)), new)
    finally:
        done.set()
        reader.join()
    assert outcomes[SHARED[0]].status == "ok"
    assert dest.read_bytes() == new and dest.stat().st_mode & 0o7777 == 0o644
    assert seen <= {hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()}
    assert hashlib.sha256(old).hexdigest() in seen  # the reader ran while the copy did


def test_each_host_fails_in_its_own_words_and_leaves_nothing_behind(hosts: CopyHosts, tmp_path: Path) -> None:
    folder = tmp_path / "only-outside-the-jail"
    folder.mkdir()
    data = b"x" * 1000
    copy = FileCopy(file=FILE_ID, dest=str(folder / "f.txt"))
    outcomes = copy_to_all(hosts, (SHARED[0], JAILED), copy, data)
    assert outcomes[SHARED[0]].status == "ok" and (folder / "f.txt").read_bytes() == data
    jailed = outcomes[JAILED]
    assert jailed.status == "failed" and jailed.error is not None
    assert jailed.error.startswith(f"no such directory: {folder}")

    denied = copy_to_all(hosts, SHARED[:1], FileCopy(file=FILE_ID, dest="/sys/fleetdeck-copy-test"), data)
    assert denied[SHARED[0]].status == "failed"
    assert "permission denied writing /sys/.fleetdeck-copy-test.fleetdeck-" in str(denied[SHARED[0]].error)

    directory = copy_to_all(hosts, SHARED[:1], FileCopy(file=FILE_ID, dest=str(folder)), data)
    assert directory[SHARED[0]].error == f"the destination {folder} is a directory on this host"
    assert sorted(p.name for p in folder.iterdir()) == ["f.txt"]

    # The jailed host holds its own /srv: the same job writes there, and only there.
    inside = copy_to_all(hosts, (JAILED,), FileCopy(file=FILE_ID, dest="/srv/f.txt", mode="600"), data)
    assert inside[JAILED].status == "ok"
    assert (hosts.jail / "srv" / "f.txt").read_bytes() == data
    assert (hosts.jail / "srv" / "f.txt").stat().st_mode & 0o7777 == 0o600


def test_a_copy_cancelled_while_writing_removes_its_temporary_file(hosts: CopyHosts, tmp_path: Path) -> None:
    dest = tmp_path / "huge.bin"
    data = os.urandom(128 * 1024 * 1024)

    async def run() -> Outcome:
        cancel = asyncio.Event()
        task = asyncio.create_task(
            copy_to_host(SHARED[0], FileCopy(file=FILE_ID, dest=str(dest)), data, 60, hosts.options(), cancel)
        )
        await eventually(lambda: any(tmp_path.iterdir()), 30, what="the temporary file")
        cancel.set()
        return await task

    outcome = asyncio.run(run())
    assert outcome.status == "cancelled" and "the partial file was removed" in str(outcome.error)
    assert list(tmp_path.iterdir()) == [] and not dest.exists()
