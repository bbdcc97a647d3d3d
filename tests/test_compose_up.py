"""`docker compose --profile demo up` for real, through testcontainers' compose support: images built
here, every healthcheck passing, a login, live frames, an exec on the demo SSH hosts, and
`docker compose down` leaving no container, volume or network behind.

Where no Docker engine answers, the whole module is skipped once, with the reason; test_compose.py
proves the same files by running each service's command as a local process."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from testcontainers.compose import DockerCompose

from fleetdeck_gateway.auth.tokenedit import add_token
from tests.support.compose import ROOT, compose_variables
from tests.support.composeup import engine_missing, leftovers, project_env, wait_healthy
from tests.support.wsclient import Frame, WsClient

MISSING = engine_missing()
if MISSING is not None:
    pytest.skip(MISSING, allow_module_level=True)

DEMO_HOSTS = ("demo-target-1", "demo-target-2", "demo-target-3")
GATEWAY_PORT = 8000  # the container port docker-compose.yml publishes


@pytest.mark.timeout(900)
async def test_compose_up_builds_serves_a_login_live_frames_and_an_exec_then_comes_down_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    tokens.chmod(0o755)  # mounted as a folder, read by the gateway's uid 10001 (as the README says)
    token = add_token(tokens / "tokens.txt", "alice", "operator")
    (tokens / "tokens.txt").chmod(0o644)
    agent = f"compose-{uuid.uuid4().hex[:6]}"
    project, env_file = project_env(
        tmp_path,
        FLEETDECK_VERSION="test",  # images of their own tag: a developer's `latest` is left alone
        FLEETDECK_PUBLISH="127.0.0.1:",  # loopback, on a port the engine picks
        FLEETDECK_TOKENS_DIR=str(tokens),
        FLEETDECK_AGENT_NAME=agent,
        FLEETDECK_INTERVAL="0.5",
    )
    for name in compose_variables():  # the env file decides, not this shell
        monkeypatch.delenv(name, raising=False)
    compose = DockerCompose(
        ROOT, "docker-compose.yml", build=True, wait=False, profiles=["demo"], env_file=str(env_file)
    )
    with compose:
        wait_healthy(project, ("demo",))
        host = compose.get_service_host("gateway", GATEWAY_PORT)
        port = compose.get_service_port("gateway", GATEWAY_PORT)
        assert host in ("127.0.0.1", "localhost"), host  # published on loopback only
        base = f"http://{host}:{port}"
        assert httpx.get(base + "/readyz", timeout=5).status_code == 200

        login = httpx.post(base + "/api/login", json={"token": token}, timeout=10)
        assert login.status_code == 200 and login.json() == {"user": "alice", "role": "operator"}
        cookie = login.cookies["fleetdeck_session"]
        client = await WsClient.open(
            f"ws://{host}:{port}/ws",
            origin=base,
            additional_headers={"Cookie": f"fleetdeck_session={cookie}"},
        )
        assert (await client.expect_type("hello"))["user"] == "alice"
        await client.send({"type": "subscribe", "topics": ["cpu", "hosts"]})
        sample = await client.expect(lambda f: f["type"] == "cpu" and f["host"] == agent, 30)
        assert sample["percpu"] and 0 <= sample["mem"] <= 100

        command = "echo fleetdeck-$((6 * 7))"  # the remote shell does the sum
        await client.send({"type": "exec", "targets": ",".join(DEMO_HOSTS), "command": command, "ref": "d"})
        job = await client.expect(lambda f: f.get("ref") == "d", 30)
        assert job["type"] == "job" and job["hosts"] == len(DEMO_HOSTS), job
        results: list[Frame] = []

        def finished(frame: Frame) -> bool:
            ours = frame.get("job") == job["job"]
            if ours and frame["type"] == "result":
                results.append(frame)
            return ours and bool(frame["type"] == "done")

        done = await client.expect(finished, 120)
        assert done["summary"] == {"ok": len(DEMO_HOSTS)}, (done, results)
        assert sorted(r["host"] for r in results) == sorted(DEMO_HOSTS)
        assert all(r["stdout"].strip() == "fleetdeck-42" for r in results), results
        await client.close()
    assert leftovers(project) == {}  # `down --volumes` took containers, volumes and the network
