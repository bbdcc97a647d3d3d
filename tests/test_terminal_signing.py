"""Terminal requests are signed like jobs: the session's worker (holding the job key) opens none
that is unsigned, badly signed, replayed or stale, contacts no host for it, audits it as a
refused forged job and tells the gateway why. Also: the recording's cap, and terminals on the
memory broker (`fleetdeck up`)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import GAP, Broker, create_broker
from fleetdeck_common.jobs.signing import load_job_key, sign
from fleetdeck_common.terms.cast import CastWriter, cut_note
from fleetdeck_common.terms.store import TermStore, gateway_channel
from fleetdeck_common.terms.wire import TermMessage, TermRequest
from testbed.opensshd import OpenSshd
from testbed.procs import ROOT, Service, free_port, wait_until
from tests.support.stacks import ExecStack
from tests.support.terms import HOST, PROMPT, open_term
from tests.support.waiting import eventually
from tests.support.wsclient import WsClient

pytestmark = pytest.mark.ssh

FLEETDECK = str(ROOT / ".venv" / "bin" / "fleetdeck")


def test_the_recording_stops_at_its_cap_and_says_so() -> None:
    writer = CastWriter(started=100.0, limit=200)
    first = writer.output(100.5, "hello")
    assert [json.loads(line) for line in first] == [[0.5, "o", "hello"]]
    assert [json.loads(line) for line in writer.resize(101.0, 100, 30)] == [[1.0, "r", "100x30"]]
    cut = writer.output(102.0, "x" * 500)
    assert [json.loads(line) for line in cut] == [[2.0, "o", cut_note(200)]] and writer.cut
    assert writer.output(103.0, "more") == [] and writer.resize(103.0, 10, 10) == []


@pytest.fixture
async def admin(exec_stack: ExecStack) -> AsyncIterator[Broker]:
    async with create_broker(exec_stack.redis_url) as broker:
        yield broker


def request(gateway: str, **changes: object) -> TermRequest:
    now = time.time()
    fields: dict[str, object] = {
        "term": uuid.uuid4().hex[:16],
        "host": HOST,
        "address": HOST,
        "user": "mallory",
        "cols": 80,
        "rows": 24,
        "gateway": gateway,
        "ts": now,
        "queued_until": now + 10,
    }
    return TermRequest.model_validate(fields | changes)


async def test_unsigned_forged_replayed_and_stale_requests_open_nothing(
    exec_stack: ExecStack, admin: Broker, shell_host: OpenSshd
) -> None:
    store = TermStore(admin, 600)
    key = load_job_key(Path(exec_stack.users.job_key))
    gateway = f"test-{uuid.uuid4().hex[:6]}"
    good = request(gateway)
    cases = [
        (request(gateway), None, "no signature"),
        (request(gateway), "00" * 32, "bad signature"),
        (request(gateway, user="alice"), sign(key, request(gateway, user="mallory")), "bad signature"),
        (
            stale := request(gateway, queued_until=time.time() - 1),
            sign(key, stale),
            "older than the queue timeout",
        ),
        (good, sign(key, good), None),  # opens: the control
        (good, sign(key, good), "replayed terminal id"),
    ]
    heard: dict[str, TermMessage] = {}
    async with admin.subscribe([gateway_channel(gateway)]) as events:

        async def listen() -> None:
            async for event in events:
                if event is not GAP:
                    message = TermMessage.decode(event.data)
                    if message.k in ("closed", "opened"):
                        heard.setdefault(message.term + message.k, message)

        listening = asyncio.create_task(listen())
        try:
            for req, signature, _reason in cases:
                await store.queue(req, signature)
                if req is good and _reason is None:
                    await eventually(lambda: good.term + "opened" in heard, 30, "the signed terminal opened")
            refused = [(req, reason) for req, _sig, reason in cases if reason is not None]
            await eventually(lambda: len([k for k in heard if k.endswith("closed")]) >= 5, 30, "the refusals")
        finally:
            await store.to_worker("w-main", TermMessage(k="close", term=good.term, reason="test over"))
            listening.cancel()
    for req, reason in refused:
        if req is good:
            continue  # its one `closed` is the real session's
        assert heard[req.term + "closed"].reason == f"refused by the worker: {reason}"
    audit = (await AuditStore(admin).page(limit=1000)).entries
    refusals = {(e.term, e.reason) for e in audit if e.action == "job_refused" and e.term}
    assert {(req.term, reason) for req, reason in refused} <= refusals
    assert all(e.user in ("mallory", "alice") for e in audit if e.action == "job_refused" and e.term)


async def test_terminals_work_on_the_memory_broker_of_fleetdeck_up(
    tmp_path: Path, exec_stack: ExecStack, shell_host: OpenSshd
) -> None:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: `up` must not need it
    env = {"REDIS_URL": dead_redis, **exec_stack.fleet.worker_env(), "FLEETDECK_INTERVAL": "0.5"}
    up = Service("fleetdeck-up-terms", [FLEETDECK, "up", "--port", str(port)], env, tmp_path)
    try:
        wait_until(lambda: "Log in at:" in up.log(), 30, what="the login URL")
        wait_until(lambda: _ready(port), 30, what="fleetdeck up answering /readyz")
        found = re.search(r"token=(\S+)", up.log())
        assert found is not None
        token = found.group(1)
        client = await WsClient.open(f"ws://127.0.0.1:{port}/ws", token)
        try:
            await client.expect_type("hello")
            term = await open_term(client)
            await term.send("echo up-$((6*7))\r")
            await term.until("up-42")
            await term.send("exit 5\r")
            assert (await term.closed())["exit_code"] == 5
        finally:
            await client.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            headers = {"Authorization": f"Bearer {token}"}
            listed = (await http.get("/api/terms", headers=headers)).json()["terms"]
            assert [t["exit_code"] for t in listed if t["id"] == term.id] == [5]
            cast = (await http.get(f"/api/terms/{term.id}/cast", headers=headers)).text
            assert "up-42" in cast and PROMPT in cast
    finally:
        assert up.stop() == 0, up.log()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
