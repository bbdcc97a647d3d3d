"""The audit trail: every exec attempt, cancel, login, logout and session closed by revocation is
recorded with who, from where, when, what and the outcome; operators read it through
`GET /api/audit` and `fleetdeck audit`; no secret reaches it or the gateway's log.

In-process (Starlette's TestClient, memory broker) where the gateway's logic is the point; real
processes (a gateway, Redis, the loopback SSH fleet and a worker, the `fleetdeck` command) where
the point is what a deployment records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from fleetdeck.audit_command import format_entry
from fleetdeck_common.audit import AuditEntry, parse_since
from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import BrokerUnavailable, create_broker
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.authenticator import SESSION_COOKIE
from fleetdeck_gateway.auth.identity import Identity
from fleetdeck_gateway.auth.peer import clean_address
from fleetdeck_gateway.auth.tokenedit import add_token, remove_token, rotate_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.services.audittrail import AuditTrail
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import BIN, ROOT, RedisServer, start_gateway, wait_until
from tests.support.jobs import run_job
from tests.support.stacks import ExecStack, Tokens
from tests.support.wsclient import WsClient

FLEETDECK = str(BIN / "fleetdeck")
Entry = dict[str, Any]


def marker() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}"


# --- in-process ---------------------------------------------------------------------------------


@dataclass
class App:
    http: TestClient
    token_file: Path
    alice: str  # operator
    bob: str  # viewer
    carol: str  # operator limited to 127.0.0.2-9

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def audit(self, **params: str) -> list[Entry]:
        answer = self.http.get("/api/audit", params=params, headers=self.bearer(self.alice))
        assert answer.status_code == 200, answer.text
        entries: list[Entry] = answer.json()["entries"]
        return entries

    def ws_send(self, token: str, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send each frame over one socket; the reply carrying each frame's ref."""
        replies = []
        # TestClient cancels the app as soon as it has sent the disconnect; an endpoint still
        # winding down its job watch then shows up as a CancelledError on the way out.
        with (
            contextlib.suppress(CancelledError),
            self.http.websocket_connect("/ws", headers=self.bearer(token)) as ws,
        ):
            assert ws.receive_json()["type"] == "hello"
            for frame in frames:
                ws.send_json(frame)
                while (reply := ws.receive_json()).get("ref") != frame["ref"]:
                    pass
                replies.append(reply)
        assert len(replies) == len(frames)
        return replies


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    token_file = tmp_path / "tokens"
    alice, bob = add_token(token_file, "alice", "operator"), add_token(token_file, "bob", "viewer")
    carol = add_token(token_file, "carol", "operator", scope="127.0.0.2-9")
    settings = GatewaySettings(redis_url="memory://", tokens_file=token_file, web_dir=ROOT / "web")
    starlette_app = create_app(settings, broker=MemoryBroker(), tokens=TokenStore(token_file))
    with TestClient(starlette_app, base_url="http://testserver") as http:
        yield App(http, token_file, alice, bob, carol)


def test_exec_attempts_are_audited_accepted_or_refused_with_who_where_and_what(app: App) -> None:
    before = time.time()
    accepted = app.http.post(
        "/api/jobs",
        json={"targets": "127.0.0.2-4,127.0.0.9", "command": "uptime", "timeout": 12},
        headers=app.bearer(app.alice),
    )
    assert accepted.status_code == 202
    attempts = [
        (app.alice, {"targets": "8.8.8.8", "command": "id"}, 422),  # outside the allowlist
        (app.alice, {"targets": "127.0.0.1-300", "command": "id"}, 422),  # a bad term
        (app.bob, {"targets": "127.0.0.2", "command": "id"}, 403),  # a viewer
        (app.carol, {"targets": "127.0.0.8-11", "command": "id"}, 403),  # outside carol's targets
    ]
    for token, body, status in attempts:
        assert app.http.post("/api/jobs", json=body, headers=app.bearer(token)).status_code == status
    [ws_job, ws_refused] = app.ws_send(
        app.carol,
        [
            {"type": "exec", "targets": "127.0.0.2-3", "command": "hostname", "ref": "a"},
            {"type": "exec", "targets": "8.8.8.0/30", "command": "hostname", "ref": "b"},
        ],
    )
    assert ws_job["type"] == "job" and ws_refused["code"] == "invalid_targets"

    entries = app.audit()
    assert [(e["action"], e["outcome"], e["user"], e.get("code")) for e in entries] == [
        ("exec", "refused", "carol", "invalid_targets"),
        ("exec", "accepted", "carol", None),
        ("exec", "refused", "carol", "forbidden"),
        ("exec", "refused", "bob", "forbidden"),
        ("exec", "refused", "alice", "invalid_targets"),
        ("exec", "refused", "alice", "invalid_targets"),
        ("exec", "accepted", "alice", None),
    ]
    first = entries[-1]
    assert first["job"] == accepted.json()["job"]
    assert (first["targets"], first["hosts"], first["host_set"]) == (
        "127.0.0.2-4,127.0.0.9",
        4,
        "127.0.0.[2-4,9]",
    )
    assert (first["command"], first["timeout"], first["role"]) == ("uptime", 12.0, "operator")
    assert (first["address"], first["via"]) == ("testclient", "http")
    assert before <= first["ts"] <= time.time()
    assert "8.8.8.8" in entries[-2]["reason"] and "hosts" not in entries[-2]
    assert "300" in entries[-3]["reason"]
    assert entries[-4]["role"] == "viewer" and "operator role" in entries[-4]["reason"]
    scoped = entries[-5]  # expanded, then refused: the audit says where it would have run
    assert (scoped["hosts"], scoped["host_set"], scoped["scope"]) == (4, "127.0.0.[8-11]", "127.0.0.2-9")
    assert "127.0.0.10" in scoped["reason"]
    assert entries[1]["job"] == ws_job["job"] and entries[1]["via"] == "ws"
    assert entries[0]["targets"] == "8.8.8.0/30" and entries[0]["address"] == "testclient"
    # The job records themselves are not the audit: only the two accepted jobs exist.
    assert len(app.http.get("/api/jobs", headers=app.bearer(app.alice)).json()["jobs"]) == 2


def test_the_audit_is_for_operators_and_pages_newest_first(app: App) -> None:
    assert app.http.get("/api/audit").status_code == 401
    assert app.http.get("/api/audit", headers=app.bearer(app.bob)).status_code == 403
    for n in range(5):
        app.http.post(
            "/api/jobs", json={"targets": "127.0.0.2", "command": f"echo {n}"}, headers=app.bearer(app.alice)
        )
    answer = app.http.get("/api/audit", params={"limit": "2"}, headers=app.bearer(app.alice)).json()
    assert [e["command"] for e in answer["entries"]] == ["echo 4", "echo 3"]
    second = app.audit(limit="2", before=answer["next"])
    assert [e["command"] for e in second] == ["echo 2", "echo 1"]
    last = app.http.get(
        "/api/audit", params={"before": second[-1]["id"]}, headers=app.bearer(app.alice)
    ).json()
    assert [e["command"] for e in last["entries"]] == ["echo 0"] and last["next"] is None
    now = time.time()
    assert app.audit(since=str(now + 60)) == []
    assert len(app.audit(since="1h")) == 5
    iso = datetime.fromtimestamp(now - 3600, UTC).isoformat()
    assert len(app.audit(since=iso)) == 5
    for params, fragment in [
        ({"before": "$"}, "entry id"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"since": "yesterday"}, "since"),
    ]:
        answer = app.http.get("/api/audit", params=params, headers=app.bearer(app.alice))
        assert answer.status_code == 400 and fragment in answer.json()["message"], params


def test_since_reads_unix_seconds_durations_and_iso_times() -> None:
    now = 1_800_000_000.0
    assert parse_since("1700000000", now) == 1_700_000_000
    assert parse_since("90s", now) == now - 90
    assert parse_since("1h", now) == now - 3600
    assert parse_since("2w", now) == now - 14 * 86400
    assert parse_since("2027-01-15T08:00:00Z", now) == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert parse_since("2027-01-15T09:00:00 01:00", now) == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert parse_since("2027-01-15 08:00", now) == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    for bad in ("", "1y", "-5", "soon", "1h ago"):
        with pytest.raises(ValueError, match="since must be"):
            parse_since(bad, now)


def test_cancels_follow_the_stated_rule_and_are_audited(app: App) -> None:
    """Viewers cancel nothing; operators cancel any job; a token with targets cancels its own
    jobs and jobs that run inside its targets only."""

    def queue(token: str, targets: str) -> str:
        answer = app.http.post(
            "/api/jobs", json={"targets": targets, "command": "sleep 60"}, headers=app.bearer(token)
        )
        assert answer.status_code == 202, answer.text
        job: str = answer.json()["job"]
        return job

    inside, outside, carols = (
        queue(app.alice, "127.0.0.2-3"),
        queue(app.alice, "127.0.0.30"),
        queue(app.carol, "127.0.0.5"),
    )
    viewer = app.ws_send(app.bob, [{"type": "cancel", "job": inside, "ref": "v"}])
    assert viewer[0]["code"] == "forbidden" and "operator role" in viewer[0]["message"]
    replies = app.ws_send(
        app.carol,
        [
            {"type": "cancel", "job": outside, "ref": "c1"},
            {"type": "cancel", "job": inside, "ref": "c2"},
            {"type": "cancel", "job": carols, "ref": "c3"},
            {"type": "cancel", "job": "0000000000000000", "ref": "c4"},
        ],
    )
    assert replies[0]["code"] == "forbidden" and "127.0.0.30" in replies[0]["message"]
    assert [r["type"] for r in replies[1:3]] == ["job", "job"] and replies[3]["code"] == "not_found"
    [by_alice] = app.ws_send(app.alice, [{"type": "cancel", "job": outside, "ref": "a"}])
    assert by_alice["type"] == "job"

    cancels = [e for e in app.audit() if e["action"] == "cancel"]
    assert [(e["user"], e["job"], e["outcome"], e.get("owner")) for e in cancels] == [
        ("alice", outside, "accepted", "alice"),
        ("carol", "0000000000000000", "refused", None),
        ("carol", carols, "accepted", "carol"),
        ("carol", inside, "accepted", "alice"),
        ("carol", outside, "refused", "alice"),
        ("bob", inside, "refused", None),
    ]
    assert cancels[-2]["code"] == "forbidden" and cancels[-2]["command"] == "sleep 60"
    assert all(e["via"] == "ws" and e["address"] == "testclient" for e in cancels)


def test_logins_and_logouts_are_audited_without_secrets(app: App) -> None:
    assert app.http.post("/api/login", json={"token": "fdk_not-a-token"}).status_code == 401
    login = app.http.post("/api/login", json={"token": app.bob})
    assert login.status_code == 200
    session = login.cookies[SESSION_COOKIE]
    assert app.http.post("/api/logout", headers={"Origin": "http://testserver"}).status_code == 200
    entries = app.audit()
    assert [(e["action"], e["outcome"], e.get("user")) for e in entries[:3]] == [
        ("logout", "accepted", "bob"),
        ("login", "accepted", "bob"),
        ("login", "refused", None),
    ]
    assert entries[2]["address"] == "testclient" and entries[2]["code"] == "unauthorized"
    text = json.dumps(entries)
    for secret in (app.bob, "fdk_not-a-token", session, hashlib.sha256(app.bob.encode()).hexdigest()):
        assert secret not in text


def test_a_session_closed_by_revocation_is_audited(app: App) -> None:
    with app.http.websocket_connect("/ws", headers=app.bearer(app.bob)) as ws:
        assert ws.receive_json()["type"] == "hello"
        remove_token(app.token_file, "bob")
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
    assert closed.value.code == 1008

    def closed_entry() -> Entry | None:
        return next((e for e in app.audit() if e["action"] == "session_closed"), None)

    wait_until(closed_entry, 5, what="the session_closed entry")
    entry = closed_entry()
    assert entry is not None
    assert (entry["user"], entry["role"], entry["reason"], entry["outcome"]) == (
        "bob",
        "viewer",
        "token revoked",
        "closed",
    )
    assert (entry["address"], entry["via"]) == ("testclient", "ws")


async def test_the_store_keeps_its_newest_entries_whatever_their_age() -> None:
    store = AuditStore(MemoryBroker(), keep=3)
    for n in range(5):
        await store.append(AuditEntry(ts=n, action="login", outcome="accepted", user=f"u{n}"))
    page = await store.page(limit=10)
    assert [e.user for e in page.entries] == ["u4", "u3", "u2"] and page.next is None
    assert [e.user for e in (await store.page(limit=10, since=3)).entries] == ["u4", "u3"]


async def test_an_entry_the_broker_cannot_take_goes_to_the_log_and_the_action_goes_ahead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down(MemoryBroker):
        async def stream_append(self, stream: str, fields: Mapping[str, str], keep: int) -> str:
            raise BrokerUnavailable("Redis did not answer within 5s")

    trail = AuditTrail(AuditStore(Down()))
    with caplog.at_level(logging.INFO):
        await trail.login(Identity("alice", "operator", "0" * 64))
    [record] = [r for r in caplog.records if r.name == "fleetdeck_gateway.audit"]
    assert record.levelno == logging.ERROR and "not stored (Redis did not answer" in record.getMessage()
    assert '"action": "login"' in record.getMessage() and '"user": "alice"' in record.getMessage()
    assert "0" * 64 not in record.getMessage()


def test_addresses_are_canonical_and_printable() -> None:
    assert clean_address("::ffff:0:127.0.0.1") == "::ffff:0:7f00:1"
    assert clean_address("2001:DB8::0001") == "2001:db8::1"
    assert (
        clean_address("<script>\x07alert(1)</script>" + "x" * 200)
        == ("<script>alert(1)</script>" + "x" * 200)[:64]
    )
    assert clean_address(None) == clean_address("") == "unknown"


def test_the_cli_prints_one_escaped_line_per_entry() -> None:
    entry = {
        "ts": 1_800_000_000.0,
        "action": "exec",
        "outcome": "refused",
        "user": "alice",
        "role": "operator",
        "address": "10.1.2.3",
        "code": "invalid_targets",
        "reason": "'8.8.8.8': outside the allowed targets",
        "targets": "8.8.8.8",
        "command": "echo \x1b[31mred\nnext",
        "timeout": 30.0,
    }
    line = format_entry(entry)
    assert "\n" not in line and "\x1b" not in line and "\\x1b[31mred\\x0anext" in line
    assert line.startswith("2027-01-15 08:00:00  alice (operator)")
    assert "10.1.2.3" in line and "exec refused" in line and "on 8.8.8.8" in line


# --- real processes -------------------------------------------------------------------------------


def fleetdeck(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLEETDECK, *args], capture_output=True, text=True, timeout=timeout, env={"PATH": "/usr/bin:/bin"}
    )


@pytest.mark.ssh
async def test_exec_audit_reads_back_through_the_api_and_the_cli(
    exec_stack: ExecStack, tokens: Tokens
) -> None:
    tag = marker()
    url = exec_stack.gateway.url
    client = await WsClient.open(exec_stack.gateway.ws_url, tokens.operator)
    try:
        job, _results, done = await run_job(client, "127.0.0.2-3", f"echo {tag}", timeout=10)
        assert done["summary"] == {"ok": 2}
        await client.send(
            {"type": "exec", "targets": "8.8.8.8", "command": f"echo {tag}-refused", "ref": "r"}
        )
        refused = await client.expect(lambda f: f.get("ref") == "r")
        assert refused["code"] == "invalid_targets"
    finally:
        await client.close()
    assert exec_stack.fleet.commands(f"{tag}-refused") == []  # nothing ran for the refused one

    def mine(entries: list[Entry]) -> list[Entry]:
        return [e for e in entries if tag in e.get("command", "")]

    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(
            "/api/audit", params={"since": "10m"}, headers={"Authorization": f"Bearer {tokens.operator}"}
        )
        assert answer.status_code == 200, answer.text
        denied = await http.get("/api/audit", headers={"Authorization": f"Bearer {tokens.viewer}"})
        assert denied.status_code == 403
    refused_entry, accepted_entry = mine(answer.json()["entries"])
    assert (accepted_entry["outcome"], accepted_entry["job"]) == ("accepted", job["job"])
    assert (accepted_entry["hosts"], accepted_entry["host_set"]) == (2, "127.0.0.[2-3]")
    assert (
        accepted_entry["user"],
        accepted_entry["role"],
        accepted_entry["address"],
        accepted_entry["via"],
    ) == (
        "alice",
        "operator",
        "127.0.0.1",
        "ws",
    )
    assert (refused_entry["outcome"], refused_entry["code"]) == ("refused", "invalid_targets")
    assert "8.8.8.8" in refused_entry["reason"] and "job" not in refused_entry

    as_json = await asyncio.to_thread(
        fleetdeck, "audit", "--since", "1h", "--json", "--url", url, "--token", tokens.operator
    )
    assert as_json.returncode == 0, as_json.stderr
    printed = mine([json.loads(line) for line in as_json.stdout.splitlines()])
    assert [(e["id"], e["outcome"]) for e in printed] == [
        (refused_entry["id"], "refused"),
        (accepted_entry["id"], "accepted"),
    ]
    as_text = await asyncio.to_thread(
        fleetdeck, "audit", "--since", "1h", "--url", url, "--token", tokens.operator
    )
    assert as_text.returncode == 0, as_text.stderr
    lines = [line for line in as_text.stdout.splitlines() if tag in line]
    assert len(lines) == 2
    assert "exec refused" in lines[0] and "invalid_targets" in lines[0] and "127.0.0.1" in lines[0]
    assert "exec accepted" in lines[1] and job["job"] in lines[1] and "127.0.0.[2-3] (2 hosts)" in lines[1]
    as_viewer = await asyncio.to_thread(fleetdeck, "audit", "--url", url, "--token", tokens.viewer)
    assert as_viewer.returncode == 2 and "403" in as_viewer.stderr


def test_the_cli_says_when_the_gateway_cannot_be_reached() -> None:
    from testbed.procs import free_port

    run = fleetdeck("audit", "--url", f"http://127.0.0.1:{free_port()}", "--token", "fdk_x")
    assert run.returncode == 3 and "cannot reach" in run.stderr


def test_no_secret_reaches_the_audit_or_the_gateways_log(tmp_path: Path) -> None:
    """Every audited kind of event on a gateway logging at DEBUG, then both scanned for every token,
    wrong token, session id and their hashes."""
    redis = RedisServer(tmp_path)
    redis.start()
    tokens_file = tmp_path / "tokens"
    operator = add_token(tokens_file, "olga", "operator")
    viewer = add_token(tokens_file, "victor", "viewer")
    doomed = add_token(tokens_file, "dora", "operator")
    wrong = "fdk_" + uuid.uuid4().hex * 2
    gateway = start_gateway(
        redis.url, tmp_path, tokens_file, name="gateway-secrets", FLEETDECK_LOG_LEVEL="DEBUG"
    )
    secrets_seen = [operator, viewer, doomed, wrong]
    try:
        with httpx.Client(base_url=gateway.url) as http:
            assert http.post("/api/login", json={"token": wrong}).status_code == 401
            login = http.post("/api/login", json={"token": viewer})
            assert login.status_code == 200
            secrets_seen.append(login.cookies[SESSION_COOKIE])
            assert http.get("/api/me").status_code == 200
            assert http.post("/api/logout").status_code == 200
            bearer = {"Authorization": f"Bearer {operator}"}
            job = http.post("/api/jobs", json={"targets": "127.0.0.2", "command": "true"}, headers=bearer)
            assert job.status_code == 202
            assert (
                http.post(
                    "/api/jobs", json={"targets": "8.8.8.8", "command": "true"}, headers=bearer
                ).status_code
                == 422
            )
            viewer_try = http.post(
                "/api/jobs",
                json={"targets": "127.0.0.2", "command": "true"},
                headers={"Authorization": f"Bearer {viewer}"},
            )
            assert viewer_try.status_code == 403
            cookie_login = http.post("/api/login", json={"token": operator})
            secrets_seen.append(cookie_login.cookies[SESSION_COOKIE])

        async def sockets() -> None:
            session = secrets_seen[-1]
            cookie = await WsClient.open(
                gateway.ws_url,
                origin=gateway.url,
                additional_headers={"Cookie": f"{SESSION_COOKIE}={session}"},
            )
            await cookie.send({"type": "cancel", "job": job.json()["job"], "ref": "c"})
            assert (await cookie.expect(lambda f: f.get("ref") == "c"))["type"] == "job"
            await cookie.close()
            victim = await WsClient.open(gateway.ws_url, doomed)
            remove_token(tokens_file, "dora")
            with pytest.raises(ConnectionClosed):
                await victim.expect(lambda f: False, 10)
            assert victim.ws.close_code == 1008

        asyncio.run(sockets())
        rotated, _ = rotate_token(tokens_file, "victor")
        secrets_seen.append(rotated)
        with httpx.Client(base_url=gateway.url) as http:
            assert http.post("/api/login", json={"token": rotated}).status_code == 200
            assert http.post("/api/login", json={"token": viewer}).status_code == 401  # the old one

        async def read_audit() -> list[AuditEntry]:
            async with create_broker(redis.url) as broker:
                return (await AuditStore(broker).page(limit=1000)).entries

        wait_until(
            lambda: any(e.action == "session_closed" for e in asyncio.run(read_audit())),
            10,
            what="session_closed",
        )
        entries = asyncio.run(read_audit())
    finally:
        gateway.stop()
        redis.stop()
    kinds = {(e.action, e.outcome) for e in entries}
    assert kinds >= {
        ("login", "accepted"),
        ("login", "refused"),
        ("logout", "accepted"),
        ("exec", "accepted"),
        ("exec", "refused"),
        ("cancel", "accepted"),
        ("session_closed", "closed"),
    }
    audit_text = json.dumps([e.model_dump() for e in entries])
    log = gateway.service.log()
    # The scan saw them: audit lines, the failed login, and uvicorn's DEBUG lines with the request
    # headers, whose bearer tokens and session cookies the log setup redacts.
    assert "audit {" in log and "login refused from 127.0.0.1" in log
    assert "Bearer [redacted]" in log and "fleetdeck_session=[redacted]" in log
    for secret in secrets_seen:
        for form in (secret, hashlib.sha256(secret.encode()).hexdigest()):
            assert form not in audit_text, "a secret in the audit trail"
            assert form not in log, "a secret in the gateway's log"
