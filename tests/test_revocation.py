"""Revocation that bites, on real processes: a removed, rotated or expired token's open sockets
are closed (1008, with the reason) within 5 s and its cookies refused at once, however the token
file was changed; a token with targets runs nothing outside them, checked by the gateway and
again by the worker."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs import JOB_INDEX_SIZE, JobStore
from fleetdeck_common.jobs.signing import load_job_key, sign
from fleetdeck_common.messages import FINISHED_STATES, Job, Role
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.authenticator import SESSION_COOKIE
from fleetdeck_gateway.auth.tokenedit import add_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import BIN, ROOT, Gateway, start_gateway
from tests.support.jobs import run_job
from tests.support.stacks import ExecStack
from tests.support.stores import job_store
from tests.support.waiting import eventually
from tests.support.wsclient import WsClient

CLOSED_WITHIN = 5.0


@dataclass
class Revocable:
    """A gateway of its own (on the exec stack's Redis and worker) and the token file it reads."""

    gateway: Gateway
    file: Path

    def add(
        self, role: Role = "viewer", expires: int | None = None, scope: str | None = None
    ) -> tuple[str, str]:
        name = f"u{secrets.token_hex(4)}"
        return name, add_token(self.file, name, role, expires, scope)

    async def login(self, token: str) -> httpx.Cookies:
        async with httpx.AsyncClient(base_url=self.gateway.url) as http:
            answer = await http.post("/api/login", json={"token": token})
            assert answer.status_code == 200, answer.text
            return answer.cookies

    async def me(self, cookies: httpx.Cookies | None = None, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=self.gateway.url, cookies=cookies) as http:
            return (await http.get("/api/me", headers=headers)).status_code

    async def sockets(self, token: str, cookies: httpx.Cookies) -> list[WsClient]:
        """One socket opened with the session cookie (a browser), one with the bearer token (a script)."""
        cookie = f"{SESSION_COOKIE}={cookies[SESSION_COOKIE]}"
        clients = [
            await WsClient.open(self.gateway.ws_url, additional_headers={"Cookie": cookie}),
            await WsClient.open(self.gateway.ws_url, token),
        ]
        for client in clients:
            await client.expect_type("hello")
            await client.send({"type": "subscribe", "topics": ["hosts", "jobs"]})
        return clients


@pytest.fixture(scope="module")
def revocable(exec_stack: ExecStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Revocable]:
    folder = tmp_path_factory.mktemp("revocable")
    file = folder / "tokens"
    add_token(file, "keeper", "viewer")
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        folder,
        file,
        name="gateway-revocation",
        FLEETDECK_JOB_KEY_FILE=exec_stack.users.job_key,
    )
    yield Revocable(gateway, file)
    gateway.stop()


async def closed(client: WsClient, timeout: float = 15) -> tuple[int, str]:
    """The close code and reason the server ends this socket with (frames before it are skipped)."""
    try:
        while True:
            await asyncio.wait_for(client.ws.recv(), timeout)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame from the server"
        return exc.rcvd.code, exc.rcvd.reason


async def assert_closed_soon(clients: list[WsClient], since: float, reason: str) -> None:
    ends = await asyncio.gather(*(closed(client) for client in clients))
    took = time.monotonic() - since
    assert ends == [(1008, reason)] * len(clients)
    assert took < CLOSED_WITHIN, f"closed after {took:.1f} s"


def without(text: str, name: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(f"{name} "))


async def test_removal_by_editing_the_file_in_place(revocable: Revocable) -> None:
    name, token = revocable.add("operator")
    cookies = await revocable.login(token)
    clients = await revocable.sockets(token, cookies)
    inode = revocable.file.stat().st_ino
    text = revocable.file.read_text()
    with revocable.file.open("r+") as handle:  # as `echo ... > tokens` or an editor writing in place
        handle.write(without(text, name))
        handle.truncate()
    edited = time.monotonic()
    assert revocable.file.stat().st_ino == inode
    assert await revocable.me(cookies) == 401  # at once
    assert await revocable.me(token=token) == 401
    await assert_closed_soon(clients, edited, "token revoked")


async def test_removal_by_replacing_the_file_with_sed_i(revocable: Revocable) -> None:
    name, token = revocable.add("viewer")
    cookies = await revocable.login(token)
    clients = await revocable.sockets(token, cookies)
    inode = revocable.file.stat().st_ino
    subprocess.run(
        ["sed", "-i", f"/^{name} /d", str(revocable.file)], check=True
    )  # writes a new file, renames it
    edited = time.monotonic()
    assert revocable.file.stat().st_ino != inode
    assert await revocable.me(cookies) == 401
    await assert_closed_soon(clients, edited, "token revoked")


async def test_removal_by_a_new_file_renamed_over_the_old(revocable: Revocable) -> None:
    name, token = revocable.add("viewer")
    cookies = await revocable.login(token)
    clients = await revocable.sockets(token, cookies)
    replacement = revocable.file.with_name("tokens.new")
    replacement.write_text(without(revocable.file.read_text(), name))
    os.replace(replacement, revocable.file)
    edited = time.monotonic()
    assert await revocable.me(cookies) == 401
    await assert_closed_soon(clients, edited, "token revoked")


async def test_rotation_with_the_command_ends_the_old_token_and_the_new_one_works(
    revocable: Revocable,
) -> None:
    name, token = revocable.add("viewer")
    cookies = await revocable.login(token)
    clients = await revocable.sockets(token, cookies)
    rotated = subprocess.run(
        [str(BIN / "fleetdeck"), "token", "rotate", name, "--file", str(revocable.file)],
        capture_output=True,
        text=True,
        check=True,
    )
    edited = time.monotonic()
    new = rotated.stdout.strip()
    assert await revocable.me(cookies) == 401
    assert await revocable.me(token=new) == 200
    await assert_closed_soon(clients, edited, "token rotated")
    assert await revocable.me(await revocable.login(new)) == 200


async def test_other_tokens_sockets_stay_open(revocable: Revocable) -> None:
    _, kept_token = revocable.add("viewer")
    kept = await WsClient.open(revocable.gateway.ws_url, kept_token)
    await kept.expect_type("hello")
    name, token = revocable.add("viewer")
    gone = await WsClient.open(revocable.gateway.ws_url, token)
    await gone.expect_type("hello")
    subprocess.run(
        [str(BIN / "fleetdeck"), "token", "remove", name, "--file", str(revocable.file)], check=True
    )
    assert await closed(gone) == (1008, "token revoked")
    await kept.send({"type": "subscribe", "topics": ["chat"], "ref": "still"})
    assert (await kept.expect(lambda f: f.get("ref") == "still"))["type"] == "subscribed"
    await kept.close()


async def test_an_expiring_token_is_closed_when_it_expires_and_refused_after(revocable: Revocable) -> None:
    expires = int(time.time()) + 4
    _, token = revocable.add("viewer", expires=expires)
    async with httpx.AsyncClient(base_url=revocable.gateway.url) as http:
        login = await http.post("/api/login", json={"token": token})
    assert login.status_code == 200
    max_age = _max_age(login)
    assert 0 < max_age <= 4  # the session does not outlive the token
    clients = await revocable.sockets(token, login.cookies)
    ends = await asyncio.gather(*(closed(client) for client in clients))
    assert ends == [(1008, "token expired")] * 2
    assert time.time() < expires + CLOSED_WITHIN
    assert await revocable.me(login.cookies) == 401
    assert await revocable.me(token=token) == 401


async def test_an_expired_token_is_refused_everywhere(revocable: Revocable) -> None:
    _, token = revocable.add("operator", expires=int(time.time()) - 1)
    async with httpx.AsyncClient(base_url=revocable.gateway.url) as http:
        assert (await http.post("/api/login", json={"token": token})).status_code == 401
        assert (await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        await WsClient.open(revocable.gateway.ws_url, token)
    assert refused.value.response.status_code == 403


def marker() -> str:
    return f"scope-{uuid.uuid4().hex[:10]}"


async def test_a_scoped_token_runs_only_inside_its_targets(
    revocable: Revocable, exec_stack: ExecStack
) -> None:
    name, token = revocable.add("operator", scope="127.0.0.2-4")
    client = await WsClient.open(revocable.gateway.ws_url, token)
    await client.expect_type("hello")
    outside = marker()
    async with job_store(exec_stack.redis_url) as store:
        before = await store.recent(JOB_INDEX_SIZE)
        await client.send(
            {"type": "exec", "targets": "127.0.0.2-5", "command": f"echo {outside}", "ref": "out"}
        )
        error = await client.expect(lambda f: f.get("ref") == "out")
        assert error["type"] == "error" and error["code"] == "forbidden", error
        assert f"127.0.0.5 is outside the targets {name}'s token may reach (127.0.0.2-4)" in error["message"]
        async with httpx.AsyncClient(base_url=revocable.gateway.url) as http:
            answer = await http.post(
                "/api/jobs",
                json={"targets": "127.0.0.9", "command": f"echo {outside}"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert answer.status_code == 403 and "127.0.0.9 is outside" in answer.json()["message"]
        assert await store.recent(JOB_INDEX_SIZE) == before  # nothing queued

    inside = marker()
    job, results, done = await run_job(client, "127.0.0.2-4", f"echo {inside}")
    assert job["scope"] == "127.0.0.2-4"
    assert done["summary"] == {"ok": 3} and sorted(r["host"] for r in results) == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
    ]
    assert sorted(row["host"] for row in exec_stack.fleet.commands(inside)) == [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
    ]
    assert exec_stack.fleet.commands(outside) == []  # and the refused job ran nowhere
    await client.close()


async def test_the_worker_refuses_a_job_outside_its_scope(exec_stack: ExecStack) -> None:
    # A job that reached the queue without the gateway's check (written to Redis directly, signed
    # with the job key as a gateway would): the worker checks the scope it carries before
    # connecting anywhere.
    tag = marker()
    now = time.time()
    job = Job(
        job=secrets.token_hex(8),
        targets="127.0.0.2-3",
        command=f"echo {tag}",
        hosts=2,
        by="mallory",
        ts=now,
        state="queued",
        timeout=10,
        queued_until=now + 60,
        scope="127.0.0.2",
    )
    async with job_store(exec_stack.redis_url) as store:
        await store.submit(job, sign(load_job_key(Path(exec_stack.users.job_key)), job))
        finished = await _finished(store, job.job)
    assert finished.error is not None and "refused by worker" in finished.error
    assert "127.0.0.3 is outside this token's targets (127.0.0.2)" in finished.error
    assert exec_stack.fleet.commands(tag) == []


async def _finished(store: JobStore, job_id: str, timeout: float = 30) -> Job:
    found: list[Job] = []

    async def finished() -> bool:
        job = await store.load(job_id)
        found[:] = [job] if job is not None and job.state in FINISHED_STATES else []
        return bool(found)

    await eventually(finished, timeout, f"job {job_id} to finish")
    return found[0]


# --- the session's lifetime, in-process ---------------------------------------------------------


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / "tokens"


def _app(tokens_file: Path, session_ttl: float = 12 * 3600) -> TestClient:
    config = GatewaySettings(
        redis_url="memory://", tokens_file=tokens_file, web_dir=ROOT / "web", session_ttl=session_ttl
    )
    return TestClient(create_app(config, broker=MemoryBroker(), tokens=TokenStore(tokens_file)))


def _max_age(answer: Any) -> int:
    """The Max-Age of the session cookie a login answer sets."""
    found = re.search(r"Max-Age=(\d+)", answer.headers["set-cookie"], re.IGNORECASE)
    assert found is not None
    return int(found.group(1))


def test_session_lifetime_is_a_setting_and_capped_by_the_token(
    tokens_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lasting = add_token(tokens_file, "alice", "viewer")
    short = add_token(tokens_file, "bob", "viewer", expires=int(time.time()) + 600)
    with _app(tokens_file, session_ttl=3600) as http:
        assert _max_age(http.post("/api/login", json={"token": lasting})) == 3600
        assert 590 <= _max_age(http.post("/api/login", json={"token": short})) <= 600
    with _app(tokens_file) as http:
        assert _max_age(http.post("/api/login", json={"token": lasting})) == 12 * 3600
    assert GatewaySettings(redis_url="memory://").session_ttl == 12 * 3600
    monkeypatch.setenv("FLEETDECK_SESSION_TTL", "120")
    assert GatewaySettings(redis_url="memory://").session_ttl == 120
