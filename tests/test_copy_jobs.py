"""Copy jobs end to end: `POST /api/files`, then a job with `copy` over HTTP, `fleetdeck copy` and the
dashboard's "Copy a file" tab in Chromium, run by a real worker
on real OpenSSH hosts; the session Redis's service users (so the file keys' grants are exercised,
and a refusal fails the run), jobs signed with the job key. And what is refused before anything runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.browser import chromium, logged_in_page
from testbed.procs import BIN, Gateway, Service, start_gateway, start_worker, wait_until
from tests.conftest import in_database
from tests.support.copyhosts import CopyHosts, copy_hosts
from tests.support.redis_users import RedisUsers
from tests.support.stacks import Tokens

# One stack per run: the module's tests share it and its database, on one xdist worker.
pytestmark = [pytest.mark.ssh, pytest.mark.xdist_group("copy_stack")]

SHARED = ("127.0.4.11", "127.0.4.12")
JAILED = "127.0.4.13"
DB = 6  # a database of the session Redis no other stack uses
MAX_UPLOAD = 2 * 1024 * 1024
MAX_TOTAL = 5 * 1024 * 1024


@dataclass
class CopyStack:
    gateway: Gateway
    worker: Service
    hosts: CopyHosts
    operator: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture(scope="module")
def copy_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_users: RedisUsers, tokens: Tokens
) -> Iterator[CopyStack]:
    workdir = tmp_path_factory.mktemp("copyjobs")
    with copy_hosts(workdir / "hosts", SHARED, JAILED) as hosts:
        worker = start_worker(
            in_database(redis_users.url("worker"), DB),
            workdir,
            "w-copy",
            FLEETDECK_SSH_KEY=str(hosts.key),
            FLEETDECK_KNOWN_HOSTS=str(hosts.known_hosts),
            FLEETDECK_SSH_PORT=str(hosts.port),
            FLEETDECK_SSH_USER="root",
            FLEETDECK_ALLOWED_TARGETS="127.0.0.0/8",
            FLEETDECK_JOB_KEY_FILE=redis_users.job_key,
        )
        try:
            gateway = start_gateway(
                in_database(redis_users.url("gateway"), DB),
                workdir,
                tokens.file,
                name="gateway-copy",
                FLEETDECK_JOB_KEY_FILE=redis_users.job_key,
                FLEETDECK_MAX_UPLOAD=str(MAX_UPLOAD),
                FLEETDECK_MAX_UPLOADS_TOTAL=str(MAX_TOTAL),
            )
            try:
                yield CopyStack(
                    gateway,
                    worker,
                    hosts,
                    {"Authorization": f"Bearer {tokens.operator}"},
                    {"Authorization": f"Bearer {tokens.viewer}"},
                )
            finally:
                gateway.stop()
        finally:
            worker.stop()


def upload(stack: CopyStack, data: bytes) -> str:
    response = httpx.post(stack.gateway.url + "/api/files", headers=stack.operator, content=data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    file_id: str = body["file"]
    return file_id


def run_job(stack: CopyStack, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(stack.gateway.url + "/api/jobs", headers=stack.operator, json=body)
    assert response.status_code == 202, response.text
    job = response.json()["job"]

    def finished() -> dict[str, Any] | None:
        found: dict[str, Any] = httpx.get(f"{stack.gateway.url}/api/jobs/{job}", headers=stack.viewer).json()
        return found if found["state"] in ("done", "cancelled", "expired") else None

    wait_until(finished, 60, what=f"copy job {job}")
    done = finished()
    assert done is not None
    return done


def test_an_uploaded_file_is_copied_to_every_host_and_fails_per_host(
    copy_stack: CopyStack, tmp_path: Path
) -> None:
    data = os.urandom(MAX_UPLOAD)
    file_id = upload(copy_stack, data)
    folder = tmp_path / "opt"
    folder.mkdir()
    dest = folder / "tool.bin"
    targets = ",".join((*SHARED, JAILED))
    job = run_job(
        copy_stack, {"targets": targets, "copy": {"file": file_id, "dest": str(dest), "mode": "0755"}}
    )
    assert job["copy"] == {"file": file_id, "dest": str(dest), "mode": "0755"} and job["command"] == ""
    statuses = {r["host"]: (r["status"], r["error"]) for r in job["results"]}
    assert statuses[SHARED[0]] == ("ok", None) and statuses[SHARED[1]] == ("ok", None)
    assert statuses[JAILED][0] == "failed" and str(statuses[JAILED][1]).startswith("no such directory")
    assert job["summary"] == {"ok": 2, "failed": 1}
    assert dest.read_bytes() == data and dest.stat().st_mode & 0o7777 == 0o755
    assert sorted(p.name for p in folder.iterdir()) == ["tool.bin"]


@contextlib.contextmanager
def small_file_system(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (root only: skipped where mounting is not allowed)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_fails_that_host_and_leaves_its_file_as_it_was(
    copy_stack: CopyStack, tmp_path: Path
) -> None:
    with small_file_system(tmp_path / "full", "256k") as folder:
        dest = folder / "app.conf"
        dest.write_bytes(b"the old contents\n")
        file_id = upload(copy_stack, os.urandom(MAX_UPLOAD))  # eight times what the disk holds
        job = run_job(copy_stack, {"targets": SHARED[0], "copy": {"file": file_id, "dest": str(dest)}})
        [result] = job["results"]
        assert result["status"] == "failed", result
        assert "no space" in result["error"] or "is its disk full?" in result["error"], result["error"]
        assert dest.read_bytes() == b"the old contents\n"  # never half a file
        assert sorted(p.name for p in folder.iterdir()) == ["app.conf"]  # no temporary file left


def test_what_is_refused_before_anything_runs(copy_stack: CopyStack, tmp_path: Path) -> None:
    url = copy_stack.gateway.url
    viewer = httpx.post(url + "/api/files", headers=copy_stack.viewer, content=b"hello")
    assert viewer.status_code == 403 and "operator" in viewer.json()["message"]
    big = httpx.post(url + "/api/files", headers=copy_stack.operator, content=b"x" * (MAX_UPLOAD + 1))
    assert big.status_code == 413 and str(MAX_UPLOAD) in big.json()["message"]
    file_id = upload(copy_stack, b"small\n")
    dest = str(tmp_path / "never")

    def refused(copy: dict[str, str], *words: str) -> None:
        response = httpx.post(
            url + "/api/jobs", headers=copy_stack.operator, json={"targets": SHARED[0], "copy": copy}
        )
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert all(word in message for word in words), message

    refused({"file": file_id, "dest": "relative/path"}, "copy.dest", "not an absolute path")
    refused({"file": "f" * 32, "dest": dest}, "copy.file", "no uploaded file")
    refused({"file": file_id, "dest": str(tmp_path) + "/"}, "names a directory")
    refused({"file": file_id, "dest": dest, "mode": "rwx"}, "copy.mode", "not an octal mode")
    both = {"targets": SHARED[0], "command": "id", "copy": {"file": file_id, "dest": dest}}
    response = httpx.post(url + "/api/jobs", headers=copy_stack.operator, json=both)
    assert response.status_code == 400 and "not both" in response.json()["message"]
    as_viewer = httpx.post(
        url + "/api/jobs",
        headers=copy_stack.viewer,
        json={"targets": SHARED[0], "copy": {"file": file_id, "dest": dest}},
    )
    assert as_viewer.status_code == 403
    assert not Path(dest).exists()


def test_uploads_together_are_bounded(copy_stack: CopyStack) -> None:
    held = 0
    while True:
        response = httpx.post(
            copy_stack.gateway.url + "/api/files", headers=copy_stack.operator, content=b"z" * MAX_UPLOAD
        )
        if response.status_code != 201:
            break
        held += MAX_UPLOAD
        assert held <= MAX_TOTAL
    assert response.status_code == 507
    message = response.json()["message"]
    assert "FLEETDECK_MAX_UPLOADS_TOTAL" in message
    found = re.search(r"(\d+) bytes are held now", message)
    assert found is not None
    used = int(found[1])  # this test's uploads and the ones before it
    assert held <= used <= MAX_TOTAL < used + MAX_UPLOAD


def fleetdeck(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fleetdeck"), *args],
        capture_output=True,
        text=True,
        timeout=300,  # a loaded machine; the command itself ends in seconds
        env={"PATH": "/usr/bin:/bin", "FLEETDECK_TOKEN": token},
    )


def test_fleetdeck_copy_uploads_pushes_prints_and_exits_like_exec(
    copy_stack: CopyStack, tokens: Tokens, tmp_path: Path
) -> None:
    source = tmp_path / "motd"
    source.write_bytes(b"welcome to the fleet\n")
    folder = tmp_path / "etc"
    folder.mkdir()
    url = copy_stack.gateway.url
    run = fleetdeck(
        "copy",
        str(source),
        ",".join(SHARED),
        str(folder / "motd"),
        "--mode",
        "600",
        "--url",
        url,
        token=tokens.operator,
    )
    assert run.returncode == 0, run.stderr
    assert "uploaded" in run.stderr and "Traceback" not in run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith(SHARED)]
    assert len(lines) == 2 and all(" ok " in line for line in lines)
    assert (folder / "motd").read_bytes() == b"welcome to the fleet\n"
    assert (folder / "motd").stat().st_mode & 0o7777 == 0o600

    partly = fleetdeck(
        "copy",
        str(source),
        f"{SHARED[0]},{JAILED}",
        str(folder / "motd"),
        "--url",
        url,
        token=tokens.operator,
    )
    assert partly.returncode == 1 and "no such directory" in partly.stdout
    assert f"re-run where it did not succeed: {JAILED}" in partly.stdout

    relative = fleetdeck("copy", str(source), SHARED[0], "etc/motd", "--url", url, token=tokens.operator)
    assert relative.returncode == 2 and "not an absolute path" in relative.stderr
    big = tmp_path / "big"
    big.write_bytes(b"b" * (MAX_UPLOAD + 1))
    refused = fleetdeck("copy", str(big), SHARED[0], str(folder / "big"), "--url", url, token=tokens.operator)
    assert refused.returncode == 2 and f"upload limit of {MAX_UPLOAD} bytes" in refused.stderr
    viewer = fleetdeck("copy", str(source), SHARED[0], str(folder / "v"), "--url", url, token=tokens.viewer)
    assert viewer.returncode == 2 and "operator" in viewer.stderr and not (folder / "v").exists()
    for run in (relative, refused, viewer):
        assert "Traceback" not in run.stderr


@pytest.mark.browser
async def test_copying_a_file_from_the_dashboard(
    copy_stack: CopyStack, tokens: Tokens, tmp_path: Path, artifacts: Path
) -> None:
    source = tmp_path / "settings.ini"
    source.write_bytes(b"[app]\nlevel = 3\n")
    folder = tmp_path / "srv"
    folder.mkdir()
    async with chromium() as browser:
        page = await logged_in_page(browser, copy_stack.gateway.url, tokens.operator)
        await page.click("#mode-copy")
        assert await page.is_hidden("#exec-form") and await page.is_visible("#copy-form")
        await page.set_input_files("#copy-file", str(source))
        await page.fill("#copy-targets", ",".join((*SHARED, JAILED)))
        await page.fill("#copy-dest", str(folder / "settings.ini"))
        await page.fill("#copy-mode", "0640")
        await page.fill("#copy-batch", "1")  # in waves of one host, the failing one last
        await page.click("#copy-run")
        await page.wait_for_selector("#exec-progress:has-text('finished 3/3')", timeout=60_000)
        assert await page.text_content("#exec-progress") == "finished 3/3 — ok 2, failed 1"
        jobs = httpx.get(copy_stack.gateway.url + "/api/jobs", headers=copy_stack.operator).json()["jobs"]
        rolled = next(j for j in jobs if j.get("copy"))
        assert (rolled["batch"], rolled.get("max_failures"), rolled["waves"]) == ("1", None, 3)
        failed = page.locator(f"#exec-outputs .host-output[data-host='{JAILED}'] pre.error")
        assert (await failed.text_content() or "").startswith("no such directory")
        command = page.locator("#job-list li.current code.command")
        assert await command.text_content() == f"copy → {folder / 'settings.ini'}"
        await page.screenshot(path=str(artifacts / "copy-a-file.png"), full_page=True)
    assert (folder / "settings.ini").read_bytes() == b"[app]\nlevel = 3\n"
    assert (folder / "settings.ini").stat().st_mode & 0o7777 == 0o640

    async with chromium() as browser:
        page = await logged_in_page(browser, copy_stack.gateway.url, tokens.viewer)
        await page.click("#mode-copy")
        assert await page.is_disabled("#copy-run")
