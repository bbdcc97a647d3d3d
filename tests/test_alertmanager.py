"""Pushing alerts to a real Alertmanager (`alerts/alertmanager.py`): it takes them as Prometheus's,
routes them to a webhook of the test's own, computes the same fingerprint fleetdeck does, keeps
them while they are sent again and resolves them when told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fleetdeck_common.alerts.payload import alert_labels, fingerprint
from fleetdeck_common.messages import Alert
from fleetdeck_gateway.alerts.alertmanager import AlertmanagerSink
from fleetdeck_gateway.alerts.poster import Poster
from testbed.alertmanager import AlertmanagerServer, alertmanager_binary
from testbed.procs import free_port
from testbed.webhook import Received, WebhookReceiver

pytestmark = pytest.mark.skipif(
    alertmanager_binary() is None,
    reason="alertmanager is not installed (Debian package `prometheus-alertmanager`)",
)
EXTERNAL = "http://127.0.0.1:8000"


def _alert(host: str, state: str = "firing", since: float = 0.0, silenced: bool = False) -> Alert:
    return Alert(
        rule="disk-full",
        host=host,
        state=state,
        value=97.0,
        since=since,
        severity="critical",
        summary=f"disk at 97% on {host}",
        labels={"role": "db", "rack-id": "r7"},
        silenced=silenced,
    )


@pytest.fixture
def notified() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, notified: WebhookReceiver) -> Iterator[AlertmanagerServer]:
    server = AlertmanagerServer(tmp_path / "am", notified.url)
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def pushing(
    alertmanager: AlertmanagerServer, resend_every: float = 60.0
) -> AsyncIterator[AlertmanagerSink]:
    poster = Poster(5.0)
    sink = AlertmanagerSink(
        alertmanager.url, poster.post, EXTERNAL, resend_every=resend_every, backoff=(0.1, 0.5)
    )
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poster.close()


async def _notification(receiver: WebhookReceiver, count: int) -> Received:
    return (await asyncio.to_thread(receiver.wait_for, count, 30))[count - 1]


async def test_a_firing_alert_reaches_alertmanagers_receiver_with_fleetdecks_fingerprint_and_resolves(
    alertmanager: AlertmanagerServer, notified: WebhookReceiver
) -> None:
    started = time.time() - 30
    async with pushing(alertmanager) as sink:
        sink.evaluated([_alert("db1", since=started)], [_alert("db1", since=started)])
        fired = (await _notification(notified, 1)).body
        assert fired["version"] == "4" and fired["status"] == "firing"
        [entry] = fired["alerts"]
        labels = alert_labels(_alert("db1"))
        assert (
            entry["labels"]
            == labels
            == {
                "alertname": "disk-full",
                "host": "db1",
                "severity": "critical",
                "role": "db",
                "rack_id": "r7",
            }
        )
        assert entry["annotations"] == {"summary": "disk at 97% on db1"}
        assert entry["fingerprint"] == fingerprint(labels)  # Alertmanager's own, computed by it
        assert entry["endsAt"] == "0001-01-01T00:00:00Z"
        assert entry["generatorURL"] == f"{EXTERNAL}/?alert=disk-full"
        [held] = await asyncio.to_thread(alertmanager.alerts)
        assert held["fingerprint"] == fingerprint(labels)

        ended = time.time()
        sink.evaluated([_alert("db1", "resolved", since=ended)], [])
        resolved = (await _notification(notified, 2)).body
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["fingerprint"] == entry["fingerprint"]
        assert resolved["alerts"][0]["startsAt"] == entry["startsAt"]
        assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert sink.last_error() is None


async def test_firing_alerts_are_sent_again_and_a_silenced_one_is_ended(
    alertmanager: AlertmanagerServer, notified: WebhookReceiver
) -> None:
    since = time.time()
    firing = [_alert("db1", since=since), _alert("db2", since=since)]
    async with pushing(alertmanager, resend_every=0.5) as sink:
        sink.evaluated(firing, firing)
        while sink.pushes < 3:  # the first push, then one each resend_every while firing
            await asyncio.sleep(0.05)
            sink.evaluated([], firing)
        held = await asyncio.to_thread(alertmanager.alerts)
        assert sorted(a["labels"]["host"] for a in held) == ["db1", "db2"]
        silenced = [firing[0], _alert("db2", since=since, silenced=True)]
        before = sink.pushes
        sink.evaluated([], silenced)
        while sink.pushes == before:
            await asyncio.sleep(0.05)
        while [a["labels"]["host"] for a in await asyncio.to_thread(alertmanager.alerts)] != ["db1"]:
            await asyncio.sleep(0.1)  # Alertmanager drops an ended alert from its active list


async def test_an_unreachable_alertmanager_is_said_so_and_retried() -> None:
    poster = Poster(2.0)
    sink = AlertmanagerSink(f"http://127.0.0.1:{free_port()}", poster.post, EXTERNAL, backoff=(0.05, 0.1))
    task = asyncio.create_task(sink.run())
    try:
        sink.evaluated([_alert("db1")], [_alert("db1")])
        while (error := sink.last_error()) is None or "trying again" not in error:
            await asyncio.sleep(0.02)
        assert "could not be reached" in error and "/api/v2/alerts" not in error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poster.close()
