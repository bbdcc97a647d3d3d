"""Alert delivery end to end: real Redis, real agents, real gateways sending to a webhook receiver
of the test's own (and to a real Alertmanager). Two gateways send each transition once, across a
gateway killed mid-alert; a failing webhook is retried and its error shows in the API and the
CLI; a silence made with the CLI keeps an alert off the webhook."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.alertmanager import AlertmanagerServer, alertmanager_binary
from testbed.procs import BIN
from testbed.webhook import WebhookReceiver
from tests.support.alertstack import alert_stack, expect_transition, rules_text, subscribed
from tests.support.stacks import Tokens
from tests.support.waiting import eventually

Sent = tuple[str, str, str]  # alertname, host, status


def sent(receiver: WebhookReceiver) -> list[Sent]:
    """Every alert the webhook took, in order, flattened across POSTs."""
    return [
        (a["labels"]["alertname"], a["labels"]["host"], a["status"])
        for post in receiver.received
        for a in post.body["alerts"]
    ]


async def until_sent(receiver: WebhookReceiver, alert: Sent, timeout: float = 30) -> dict[str, Any]:
    """The webhook entry of `alert`, once it has come."""

    def entry() -> dict[str, Any] | None:
        for post in receiver.received:
            for a in post.body["alerts"]:
                if (a["labels"]["alertname"], a["labels"]["host"], a["status"]) == alert:
                    return dict(a)
        return None

    await eventually(lambda: entry() is not None, timeout, f"{alert} at the webhook")
    found = entry()
    assert found is not None
    return found


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fleetdeck"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


async def test_two_gateways_send_each_transition_once_across_a_takeover(
    tmp_path: Path, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    with alert_stack(
        tmp_path, tokens, ("hot-1", "down-1"), gateways=2, FLEETDECK_ALERT_WEBHOOK=receiver.url
    ) as stack:
        fired = await until_sent(receiver, ("hot", "hot-1", "firing"))
        assert fired["labels"] == {
            "alertname": "hot",
            "host": "hot-1",
            "severity": "critical",
            "suite": "alerts",
        }
        assert fired["endsAt"] == "0001-01-01T00:00:00Z" and len(fired["fingerprint"]) == 16
        stack.agents["down-1"].kill()
        await until_sent(receiver, ("gone", "down-1", "firing"))
        holder = stack.holder()
        assert holder is not None
        holder.service.kill()  # mid-alert: the survivor takes over and must not send either again
        survivor = next(g for g in stack.gateways if g is not holder)
        await eventually(lambda: stack.holder() is survivor, 30, "the survivor taking the lease over")
        stack.start_agent("down-1")
        await until_sent(receiver, ("gone", "down-1", "resolved"))
        stack.rules.write_text(rules_text(hot="total > 1000"))
        resolved = await until_sent(receiver, ("hot", "hot-1", "resolved"))
        assert resolved["fingerprint"] == fired["fingerprint"]
        assert resolved["startsAt"] == fired["startsAt"]  # learnt by the survivor from what fires
        assert sent(receiver) == [
            ("hot", "hot-1", "firing"),
            ("gone", "down-1", "firing"),
            ("gone", "down-1", "resolved"),
            ("hot", "hot-1", "resolved"),
        ]
        assert all(post.body["version"] == "4" for post in receiver.received)


async def test_a_failing_webhook_is_retried_and_its_error_shows_in_the_api_and_the_cli(
    tmp_path: Path, tokens: Tokens
) -> None:
    receiver = WebhookReceiver([500, 503])
    try:
        with alert_stack(
            tmp_path, tokens, ("hot-1",), gateways=1, FLEETDECK_ALERT_WEBHOOK=receiver.url
        ) as stack:
            gateway = stack.gateways[0]
            await until_sent(receiver, ("hot", "hot-1", "firing"))
            assert receiver.attempts == 3 and sent(receiver) == [("hot", "hot-1", "firing")]
            error = stack.api(gateway)["delivery_error"]
            assert error.startswith("webhook: ") and "answered 503 Service Unavailable" in error
            listed = await asyncio.to_thread(
                fleetdeck, "alerts", "--url", gateway.url, "--token", tokens.viewer
            )
            assert listed.returncode == 0, listed.stderr
            assert listed.stdout.splitlines()[1].split()[:3] == ["hot", "hot-1", "critical"]
            assert "fleetdeck alerts: delivery: webhook: " in listed.stderr
    finally:
        receiver.stop()


async def test_an_alert_silenced_with_the_cli_shows_marked_and_is_not_sent(
    tmp_path: Path, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    with alert_stack(
        tmp_path, tokens, ("hot-1", "down-1"), gateways=1, FLEETDECK_ALERT_WEBHOOK=receiver.url
    ) as stack:
        gateway = stack.gateways[0]
        client, _ = await subscribed(gateway, tokens.viewer)
        await until_sent(receiver, ("hot", "hot-1", "firing"))
        as_viewer = ("--url", gateway.url, "--token", tokens.viewer)
        refused = await asyncio.to_thread(
            fleetdeck, "alerts", "silence", "gone", "--for", "2h", "--comment", "x", *as_viewer
        )
        assert refused.returncode == 2 and "the gateway answered 403" in refused.stderr
        made = await asyncio.to_thread(
            fleetdeck, "alerts", "silence", "gone", "--for", "2h", "--comment", "maintenance",
            "--url", gateway.url, "--token", tokens.operator,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("silenced rule gone until ") and "(id " in made.stdout
        stack.agents["down-1"].kill()
        gone = await expect_transition(client, "gone", "down-1", "firing")
        assert gone["silenced"] is True
        listed = await asyncio.to_thread(fleetdeck, "alerts", *as_viewer)
        assert any(
            line.split()[:2] == ["gone", "down-1"] and line.endswith("(silenced)")
            for line in listed.stdout.splitlines()
        )
        as_json = json.loads((await asyncio.to_thread(fleetdeck, "alerts", "--json", *as_viewer)).stdout)
        assert {(a["rule"], a["silenced"]) for a in as_json["firing"]} == {("hot", False), ("gone", True)}
        stack.rules.write_text(rules_text(hot="total > 1000"))  # a later transition, sent
        await until_sent(receiver, ("hot", "hot-1", "resolved"))
        assert sent(receiver) == [("hot", "hot-1", "firing"), ("hot", "hot-1", "resolved")]
        await client.ws.close()


@pytest.mark.skipif(alertmanager_binary() is None, reason="Debian package `prometheus-alertmanager`")
async def test_a_gateway_pushes_to_a_real_alertmanager_that_routes_to_its_receiver(
    tmp_path: Path, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    alertmanager = AlertmanagerServer(tmp_path / "am", receiver.url)
    alertmanager.start()
    try:
        with alert_stack(
            tmp_path, tokens, ("hot-1",), gateways=1, FLEETDECK_ALERTMANAGER_URL=alertmanager.url
        ) as stack:
            fired = await until_sent(receiver, ("hot", "hot-1", "firing"))
            assert fired["labels"]["suite"] == "alerts"
            assert fired["annotations"]["summary"].startswith("hot-1 at ")
            stack.rules.write_text(rules_text(hot="total > 1000"))
            await until_sent(receiver, ("hot", "hot-1", "resolved"))
            assert stack.api(stack.gateways[0])["delivery_error"] is None
    finally:
        alertmanager.stop()
