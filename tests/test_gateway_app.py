"""The gateway's HTTP API, auth and WebSocket handlers in-process (Starlette's TestClient, memory broker)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.messages import HOST_STATUSES, MAX_COMMAND_CHARS, STATUS_TONES
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.authenticator import SESSION_COOKIE
from fleetdeck_gateway.auth.tokenedit import add_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import ROOT


@dataclass
class App:
    http: TestClient
    token_file: Path
    operator: str
    viewer: str

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    token_file = tmp_path / "tokens"
    operator, viewer = add_token(token_file, "alice", "operator"), add_token(token_file, "bob", "viewer")
    settings = GatewaySettings(redis_url="memory://", tokens_file=token_file, web_dir=ROOT / "web")
    starlette_app = create_app(settings, broker=MemoryBroker(), tokens=TokenStore(token_file))
    with TestClient(starlette_app, base_url="http://testserver") as http:
        yield App(http, token_file, operator, viewer)


def test_api_routes_need_a_token_and_operator_routes_the_role(app: App) -> None:
    for path in ("/api/me", "/api/hosts", "/api/jobs", "/api/protocol"):
        assert app.http.get(path).status_code == 401, path
        assert app.http.get(path, headers=app.bearer("fdk_nope")).status_code == 401, path
        assert app.http.get(path, headers=app.bearer(app.viewer)).status_code == 200, path
    job = {"targets": "127.0.0.2", "command": "id"}
    assert app.http.post("/api/jobs", json=job, headers=app.bearer(app.viewer)).status_code == 403
    assert app.http.post("/api/jobs", json=job).status_code == 401
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert app.http.get(probe).status_code == 200, probe
    favicon = app.http.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/svg+xml"


def test_protocol_values_are_served_from_the_one_definition(app: App) -> None:
    body = app.http.get("/api/protocol", headers=app.bearer(app.viewer)).json()
    assert body["host_statuses"] == list(HOST_STATUSES)
    assert body["status_tones"] == STATUS_TONES
    assert body["limits"]["command_chars"] == MAX_COMMAND_CHARS
    assert body["finished_states"] == ["cancelled", "done", "expired"]


def test_a_job_is_queued_listed_and_looked_up(app: App) -> None:
    answer = app.http.post(
        "/api/jobs", json={"targets": "127.0.0.2-4", "command": "uptime"}, headers=app.bearer(app.operator)
    )
    assert answer.status_code == 202 and answer.json()["hosts"] == 3
    job_id = answer.json()["job"]
    listed = app.http.get("/api/jobs", headers=app.bearer(app.viewer)).json()["jobs"]
    assert [(j["job"], j["state"], j["by"]) for j in listed] == [(job_id, "queued", "alice")]
    one = app.http.get(f"/api/jobs/{job_id}", headers=app.bearer(app.viewer)).json()
    assert one["command"] == "uptime" and one["results"] == []
    rolling = {"targets": "127.0.0.2-4", "command": "uptime", "batch": "50%", "max_failures": 0}
    answer = app.http.post("/api/jobs", json=rolling, headers=app.bearer(app.operator))
    record = app.http.get(f"/api/jobs/{answer.json()['job']}", headers=app.bearer(app.viewer)).json()
    assert (record["batch"], record["max_failures"], record["wave"]) == ("50%", "0", None)
    assert app.http.get("/api/jobs/no.such", headers=app.bearer(app.viewer)).status_code == 404
    assert app.http.get("/api/jobs/" + "a" * 65, headers=app.bearer(app.viewer)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"targets": "8.8.8.8", "command": "id"}, 422, "outside the allowed"),
        ({"targets": "127.0.0.2", "command": "x" * (MAX_COMMAND_CHARS + 1)}, 400, "command"),
        ({"targets": "127.0.0.2", "command": "id", "extra": 1}, 400, "extra"),
        ({"targets": "127.0.0.2", "command": "id", "timeout": -1}, 400, "timeout"),
        ({"targets": "127.0.0.2", "command": "id", "batch": "0"}, 400, "batch 0 is too small"),
        ({"targets": "127.0.0.2", "command": "id", "max_failures": "200%"}, 400, "more than 100%"),
    ],
)
def test_bad_job_bodies_are_refused_with_the_reason(
    app: App, body: dict[str, object], status: int, fragment: str
) -> None:
    answer = app.http.post("/api/jobs", json=body, headers=app.bearer(app.operator))
    assert answer.status_code == status and fragment in answer.json()["message"], answer.json()
    assert app.http.get("/api/jobs", headers=app.bearer(app.viewer)).json()["jobs"] == []


def test_login_sets_a_session_that_logout_and_revocation_end(app: App) -> None:
    assert app.http.post("/api/login", json={"token": "fdk_wrong"}).status_code == 401
    assert (
        app.http.post(
            "/api/login", json={"token": app.viewer}, headers={"Origin": "http://evil.example"}
        ).status_code
        == 403
    )
    login = app.http.post("/api/login", json={"token": app.viewer})
    assert login.status_code == 200 and login.json() == {"user": "bob", "role": "viewer"}
    assert SESSION_COOKIE in login.cookies
    assert app.http.get("/api/me").json() == {"user": "bob", "role": "viewer"}
    assert app.http.post("/api/logout").status_code == 200
    assert app.http.get("/api/me").status_code == 401
    app.http.post("/api/login", json={"token": app.viewer})
    assert app.http.get("/api/me").status_code == 200
    lines = [line for line in app.token_file.read_text().splitlines() if not line.startswith("bob ")]
    app.token_file.write_text("\n".join(lines) + "\n")
    assert app.http.get("/api/me").status_code == 401
