"""The alert webhook (`alerts/webhook.py`, `delivery.py`, `poster.py`): one POST per evaluation that
changed something, retried with backoff, never holding up evaluation or the other sender, and
taken over from the outbox when the gateway holding it dies; a receiver of the test's own on
loopback answers as each test needs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from pydantic import ValidationError

from fleetdeck_common.broker import KeyValue
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.messages import Alert
from fleetdeck_gateway.alerts.alertmanager import AlertmanagerSink
from fleetdeck_gateway.alerts.delivery import Delivery
from fleetdeck_gateway.alerts.outbox import ALIVE_PATTERN, OutboxStore
from fleetdeck_gateway.alerts.poster import Poster
from fleetdeck_gateway.alerts.senders import AlertSenders
from fleetdeck_gateway.alerts.sink import NoSink, delivery_error
from fleetdeck_gateway.alerts.webhook import WebhookSink
from fleetdeck_gateway.settings import GatewaySettings
from testbed.procs import free_port
from testbed.webhook import HANG, WebhookReceiver
from tests.support.later import Backend

EXTERNAL = "http://127.0.0.1:8000"
FAST = (0.05, 0.2)  # backoff: tests wait for events, so retries need not be slow


def _alert(host: str, state: str = "firing", since: float = 1000.0, silenced: bool = False) -> Alert:
    return Alert(
        rule="cpu-hot",
        host=host,
        state=state,
        value=95.0,
        since=since,
        severity="warning",
        summary=f"cpu-hot on {host}",
        labels={"role": "web"},
        silenced=silenced,
    )


@asynccontextmanager
async def running(
    url: str,
    broker: KeyValue | None = None,
    timeout: float = 5.0,
    dest: str | None = None,
    give_up_after: float = 300.0,
    alive_ttl: float = 15.0,
) -> AsyncIterator[tuple[WebhookSink, Delivery]]:
    """A webhook sink posting to `url`, its delivery running in the background."""
    poster = Poster(timeout)
    dest = dest or f"webhook-{uuid.uuid4().hex[:8]}"  # apart from other tests' parcels
    outbox = OutboxStore(broker or MemoryBroker())
    delivery = Delivery(
        dest, url, poster.post, outbox, backoff=FAST, give_up_after=give_up_after, alive_ttl=alive_ttl
    )
    task = asyncio.create_task(delivery.run())
    try:
        yield WebhookSink(delivery, EXTERNAL), delivery
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poster.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


async def _taken(receiver: WebhookReceiver, count: int, attempts: bool = False) -> list[object]:
    return [r.body for r in await asyncio.to_thread(receiver.wait_for, count, 20, attempts)]


async def test_each_changed_evaluation_is_one_post_of_its_unsilenced_transitions(
    receiver: WebhookReceiver,
) -> None:
    async with running(receiver.url) as (sink, delivery):
        sink.evaluated([], [])  # nothing changed: nothing sent
        sink.evaluated([_alert("a"), _alert("b"), _alert("c", silenced=True)], [_alert("a"), _alert("b")])
        sink.evaluated([_alert("d", silenced=True)], [_alert("a"), _alert("b")])  # only silenced: nothing
        sink.evaluated([_alert("a", "resolved", since=1060.0)], [_alert("b")])
        first, second = await _taken(receiver, 2)
        while delivery.delivered < 2:  # the receiver records a POST before it answers
            await asyncio.sleep(0.01)
    assert isinstance(first, dict) and isinstance(second, dict)
    assert [(a["labels"]["host"], a["status"]) for a in first["alerts"]] == [("a", "firing"), ("b", "firing")]
    assert second["status"] == "resolved"
    [resolved] = second["alerts"]
    assert resolved["labels"]["host"] == "a"
    assert resolved["startsAt"].startswith("1970-01-01T00:16:40")  # when it began to fire (since 1000)
    assert resolved["fingerprint"] == first["alerts"][0]["fingerprint"]
    assert len(receiver.received) == 2 and receiver.attempts == 2
    assert {r.path for r in receiver.received} == {"/hook"}


async def test_a_500_is_retried_and_delivered_once_and_the_error_stays_visible() -> None:
    receiver = WebhookReceiver([500, 503])
    try:
        async with running(receiver.url) as (sink, _delivery):
            sink.evaluated([_alert("a")], [_alert("a")])
            [body] = await _taken(receiver, 1)
            assert receiver.attempts == 3
            senders = AlertSenders({"webhook": sink})
            error = delivery_error(senders)
            assert error is not None and "webhook:" in error and "503 Service Unavailable" in error
            assert (
                receiver.url.removesuffix("/hook") in error and "/hook" not in error
            )  # a path may be secret
        assert isinstance(body, dict) and body["alerts"][0]["labels"]["host"] == "a"
    finally:
        receiver.stop()


async def test_a_refusal_is_not_retried() -> None:
    receiver = WebhookReceiver([400])
    try:
        async with running(receiver.url) as (sink, delivery):
            sink.evaluated([_alert("a")], [_alert("a")])
            sink.evaluated([_alert("b")], [_alert("a"), _alert("b")])
            [body] = await _taken(receiver, 1)  # the second evaluation's POST
            assert receiver.attempts == 2
            assert (
                delivery.last_error is not None
                and "400 Bad Request; retrying cannot help" in delivery.last_error
            )
        assert isinstance(body, dict) and body["alerts"][0]["labels"]["host"] == "b"
    finally:
        receiver.stop()


async def test_an_unreachable_webhook_is_said_so_and_evaluation_goes_on() -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    async with running(closed) as (sink, delivery):
        for i in range(50):
            sink.evaluated([_alert(f"h{i}")], [])  # returns at once, every time
        while delivery.last_error is None:
            await asyncio.sleep(0.01)
        assert "could not be reached" in delivery.last_error
        assert delivery.waiting >= 49


async def test_a_hanging_webhook_delays_neither_evaluation_nor_alertmanager() -> None:
    hanging, alertmanager = WebhookReceiver([HANG]), WebhookReceiver()
    poster = Poster(30.0)  # longer than the test waits: the hang lasts throughout
    try:
        delivery = Delivery(
            "webhook-hang", hanging.url, poster.post, OutboxStore(MemoryBroker()), backoff=FAST
        )
        senders = AlertSenders(
            {
                "webhook": WebhookSink(delivery, EXTERNAL),
                "alertmanager": AlertmanagerSink(alertmanager.url, poster.post, EXTERNAL),
            }
        )
        task = asyncio.create_task(senders.run())
        senders.evaluated([_alert("a")], [_alert("a")])
        await asyncio.to_thread(hanging.wait_for, 1, 20, True)  # the webhook's POST hangs now
        senders.evaluated([_alert("b")], [_alert("a"), _alert("b")])
        pushed = await asyncio.to_thread(alertmanager.wait_for, 1, 20)
        assert {a["labels"]["host"] for a in pushed[0].body} <= {"a", "b"}
        assert hanging.received == [] and delivery.waiting == 1  # b's POST waits behind the hang
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await poster.close()
        hanging.stop()
        alertmanager.stop()


async def test_a_hanging_webhook_times_out_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.answers = [HANG]
    async with running(receiver.url, timeout=0.3) as (sink, delivery):
        sink.evaluated([_alert("a")], [_alert("a")])
        await _taken(receiver, 1)
        assert receiver.attempts == 2
        assert delivery.last_error is not None and "did not answer within 0.3 s" in delivery.last_error
    receiver.release()


async def test_a_post_is_given_up_after_its_time_and_leaves_the_outbox() -> None:
    broker = MemoryBroker()
    receiver = WebhookReceiver([500] * 100)
    try:
        async with running(receiver.url, broker, give_up_after=0.5) as (sink, delivery):
            sink.evaluated([_alert("a")], [_alert("a")])
            while delivery.last_error is None or "given up" not in delivery.last_error:
                await asyncio.sleep(0.02)
            assert delivery.waiting == 0
            assert await OutboxStore(broker).parcels() == []
    finally:
        receiver.stop()


async def test_a_dead_gateways_post_is_sent_by_the_next_lease_holder_exactly_once(
    backend: Backend, receiver: WebhookReceiver
) -> None:
    dest = f"webhook-{uuid.uuid4().hex[:8]}"
    closed = f"http://127.0.0.1:{free_port()}/hook"
    async with running(closed, backend.broker, dest=dest, alive_ttl=3.0) as (dying, first):
        dying.evaluated([_alert("a")], [_alert("a")])
        while first.last_error is None:
            await asyncio.sleep(0.01)
    # The first gateway is gone: its parcel stays in the outbox until its alive key expires.
    outbox = OutboxStore(backend.broker)
    [left] = [p for p in await outbox.parcels() if p.dest == dest]
    async with running(receiver.url, backend.broker, dest=dest) as (holder, second):
        holder.evaluated([], [])  # the lease holder looks for orphans: the owner still counts as alive
        while second.looked < 1:
            await asyncio.sleep(0.01)
        assert receiver.attempts == 0 and second.waiting == 0
        await backend.later(ALIVE_PATTERN, 10)
        second.adopt()  # as the holder's sink asks every ADOPT_EVERY seconds
        [body] = await _taken(receiver, 1)
        while [p for p in await outbox.parcels() if p.dest == dest]:
            await asyncio.sleep(0.01)
    assert json.loads(left.body) == body
    assert receiver.attempts == 1 and second.delivered == 1


def test_no_sink_reports_no_error() -> None:
    assert delivery_error(NoSink()) is None
    assert delivery_error(AlertSenders({})) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://hooks.example.org/x", "not a ftp:// URL"),
        ("hooks.example.org/x", "not a URL without a scheme"),
        ("https:///x", "must name a host"),
    ],
)
def test_a_webhook_url_that_is_not_http_is_refused_with_a_sentence(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(alert_webhook=value)
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(alertmanager_url=value)


def test_the_gateway_refuses_to_start_with_such_a_url() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetdeck_gateway"],
        env={"FLEETDECK_ALERT_WEBHOOK": "ftp://hooks.example.org/secret", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "FLEETDECK_ALERT_WEBHOOK" in proc.stderr and "must be an http:// or https:// URL" in proc.stderr
    assert "secret" not in proc.stderr
