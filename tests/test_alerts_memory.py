"""Alerts on the memory broker (`fleetdeck up`), in-process: a sample over the limit fires to an
`alerts` subscriber and shows in `GET /api/alerts` and `/metrics`; `@alert=NAME` names its host."""

from __future__ import annotations

import contextlib
import time
from asyncio import CancelledError
from concurrent import futures
from pathlib import Path

from starlette.testclient import TestClient

from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.hoststore import HostStore, Observation
from fleetdeck_common.messages import CpuSample
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.auth.tokenedit import add_token
from fleetdeck_gateway.auth.tokenstore import TokenStore
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import ROOT, wait_until

RULES = "rules:\n  - {name: hot, expr: total > 90, severity: critical, summary: '{host} at {value}%'}\n"


def _sample(host: str, total: float) -> CpuSample:
    # A long interval: the host stays online between the test's samples.
    return CpuSample(
        host=host, ts=time.time(), total=total, percpu=[total], mem=10, load=[0, 0, 0], interval=60
    )


def test_a_sample_over_the_limit_fires_on_the_memory_broker(tmp_path: Path) -> None:
    tokens, rules = tmp_path / "tokens", tmp_path / "rules.yaml"
    rules.write_text(RULES)
    operator = add_token(tokens, "alice", "operator")
    settings = GatewaySettings(
        redis_url="memory://",
        tokens_file=tokens,
        web_dir=ROOT / "web",
        alert_rules=rules,
        allowed_targets=["127.0.0.0/8"],
    )
    broker = MemoryBroker()
    bearer = {"Authorization": f"Bearer {operator}"}
    reached: list[bool] = []
    # TestClient cancels the app once the socket is closed; the endpoint winding down shows as a
    # CancelledError on the way out.
    with (
        contextlib.suppress(CancelledError, futures.CancelledError),
        TestClient(create_app(settings, broker=broker, tokens=TokenStore(tokens))) as http,
        http.websocket_connect("/ws", headers=bearer) as ws,
    ):
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "subscribe", "topics": ["alerts"]})
        assert ws.receive_json()["type"] == "subscribed"
        assert ws.receive_json() == {"type": "alerts", "alerts": []}
        store, portal = HostStore(broker), http.portal
        assert portal is not None  # the app's event loop, while the client is open
        portal.call(store.publish, [Observation(_sample("127.0.0.5", 50.0))])
        portal.call(store.publish, [Observation(_sample("127.0.0.6", 97.5))])
        fired = ws.receive_json()
        assert (fired["type"], fired["rule"], fired["host"], fired["state"]) == (
            "alert",
            "hot",
            "127.0.0.6",
            "firing",
        )
        assert fired["summary"] == "127.0.0.6 at 97.5%" and fired["value"] == 97.5
        firing = http.get("/api/alerts", headers=bearer).json()["firing"]
        assert [(a["rule"], a["host"]) for a in firing] == [("hot", "127.0.0.6")]
        assert 'fleetdeck_alerts_firing{rule="hot",severity="critical"} 1.0' in http.get("/metrics").text
        job = http.post("/api/jobs", json={"targets": "@alert=hot", "command": "id"}, headers=bearer)
        assert job.status_code == 202 and job.json()["hosts"] == 1, job.text
        portal.call(store.publish, [Observation(_sample("127.0.0.6", 20.0))])
        resolved = ws.receive_json()
        assert (resolved["host"], resolved["state"], resolved["value"]) == ("127.0.0.6", "resolved", 20.0)
        wait_until(
            lambda: http.get("/api/alerts", headers=bearer).json()["firing"] == [], 10, what="none firing"
        )
        reached.append(True)
    assert reached  # the cancellation suppressed above came at the end, not before
