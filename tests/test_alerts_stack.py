"""Alerts end to end: real Redis, real agents, real gateways. A threshold and an offline alert
reach `/ws` and `/api/alerts` of every gateway exactly once per transition; a gateway killed
mid-alert hands evaluation over without firing again; a restart neither fires again nor forgets;
silences mark alerts without stopping them."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx

from testbed.procs import Gateway, wait_until
from tests.support.alertstack import (
    HOLDS,
    NEVER,
    AlertStack,
    alert_stack,
    expect_transition,
    recent,
    subscribed,
    transitions,
)
from tests.support.stacks import Tokens
from tests.support.waiting import eventually

HOT_FIRING = ("hot", "hot-1", "firing")
GONE_FIRING = ("gone", "down-1", "firing")
GONE_RESOLVED = ("gone", "down-1", "resolved")
HOT_RESOLVED = ("hot", "hot-1", "resolved")


def listed(stack: AlertStack, gateway: Gateway, expected: list[tuple[str, str, str]]) -> bool:
    return recent(stack.api(gateway)) == expected


async def test_threshold_and_offline_alerts_reach_every_gateway_once_per_transition(
    tmp_path: Path, tokens: Tokens
) -> None:
    with alert_stack(tmp_path, tokens, ("hot-1", "down-1"), gateways=2, hot=NEVER) as stack:
        one, _ = await subscribed(stack.gateways[0], tokens.viewer)
        two, _ = await subscribed(stack.gateways[1], tokens.viewer)
        clients = (one, two)
        stack.set_hot(HOLDS)
        for client in clients:
            fired = await expect_transition(client, *HOT_FIRING)
            assert fired["severity"] == "critical" and fired["labels"] == {"suite": "alerts"}
            assert fired["summary"] == f"hot-1 at {fired['value']:g}%".replace(".0%", "%") or fired["summary"]
        stack.agents["down-1"].kill()
        for client in clients:
            gone = await expect_transition(client, *GONE_FIRING)
            assert gone["value"] is None and gone["silenced"] is False
        both = [("gone", "down-1"), ("hot", "hot-1")]

        def firing_in(gateway: Gateway) -> list[tuple[str, str]]:
            return sorted((a["rule"], a["host"]) for a in stack.api(gateway)["firing"])

        for gateway in stack.gateways:
            # The API's list may trail the frame by one refresh of the gateway's view.
            wait_until(lambda: firing_in(gateway) == both, 10, what="both alerts firing in /api/alerts")  # noqa: B023
        stack.start_agent("down-1")
        for client in clients:
            await expect_transition(client, *GONE_RESOLVED)
        stack.set_hot(NEVER)  # read again: the condition no longer holds
        for client in clients:
            await expect_transition(client, *HOT_RESOLVED)
        expected = [HOT_FIRING, GONE_FIRING, GONE_RESOLVED, HOT_RESOLVED]
        for client in clients:
            assert transitions(client) == expected
        for gateway in stack.gateways:
            await eventually(
                functools.partial(listed, stack, gateway, expected), 15, "the transitions listed"
            )
            assert stack.api(gateway)["firing"] == []
        await one.ws.close()
        await two.ws.close()


async def test_a_gateway_killed_mid_alert_hands_over_without_firing_again(
    tmp_path: Path, tokens: Tokens
) -> None:
    with alert_stack(tmp_path, tokens, ("hot-1", "down-1"), gateways=2, hot=NEVER) as stack:
        await eventually(lambda: stack.holder() is not None, 30, "a gateway holding the lease")
        holder = stack.holder()
        assert holder is not None
        survivor = next(g for g in stack.gateways if g is not holder)
        client, _ = await subscribed(survivor, tokens.viewer)
        stack.set_hot(HOLDS)
        await expect_transition(client, *HOT_FIRING)
        holder.service.kill()
        await eventually(lambda: stack.holder() is survivor, 30, "the survivor taking the lease over")
        stack.agents["down-1"].kill()  # a new transition: the survivor evaluates
        await expect_transition(client, *GONE_FIRING)
        assert transitions(client) == [HOT_FIRING, GONE_FIRING]
        await eventually(lambda: recent(stack.api(survivor)) == [HOT_FIRING, GONE_FIRING], 15, "the list")
        await client.ws.close()


async def test_a_restart_neither_fires_again_nor_forgets(tmp_path: Path, tokens: Tokens) -> None:
    with alert_stack(tmp_path, tokens, ("hot-1", "down-1"), gateways=1, hot=NEVER) as stack:
        client, _ = await subscribed(stack.gateways[0], tokens.viewer)
        stack.set_hot(HOLDS)
        await expect_transition(client, *HOT_FIRING)
        await client.ws.close()
        stack.gateways.pop().stop()
        gateway = stack.start_gateway("gateway-alerts-again")
        client, first = await subscribed(gateway, tokens.viewer)
        assert [(a["rule"], a["host"], a["state"]) for a in first["alerts"]] == [HOT_FIRING]
        stack.agents["down-1"].kill()
        await expect_transition(client, *GONE_FIRING)
        assert transitions(client) == [GONE_FIRING]  # hot was not fired again
        await eventually(lambda: recent(stack.api(gateway)) == [HOT_FIRING, GONE_FIRING], 15, "the list")
        await client.ws.close()


async def test_silences_mark_alerts_still_shown_and_are_audited(tmp_path: Path, tokens: Tokens) -> None:
    with alert_stack(tmp_path, tokens, ("hot-1", "down-1"), gateways=1, hot=NEVER) as stack:
        gateway = stack.gateways[0]
        client, _ = await subscribed(gateway, tokens.viewer)
        stack.set_hot(HOLDS)
        await expect_transition(client, *HOT_FIRING)
        as_operator = {"Authorization": f"Bearer {tokens.operator}"}
        as_viewer = {"Authorization": f"Bearer {tokens.viewer}"}
        body = {"rule": "gone", "for": "2h", "comment": "maintenance on down-1"}
        assert (
            httpx.post(gateway.url + "/api/alerts/silences", json=body, headers=as_viewer).status_code == 403
        )
        bad = httpx.post(
            gateway.url + "/api/alerts/silences", json={**body, "rule": "nope"}, headers=as_operator
        )
        assert bad.status_code == 400 and bad.json()["message"] == "rule: there is no rule named 'nope'"
        made = httpx.post(gateway.url + "/api/alerts/silences", json=body, headers=as_operator)
        assert made.status_code == 201, made.text
        silence = made.json()
        marked = await client.expect(lambda f: f.get("type") == "alerts", 10)  # sent again: marks may change
        assert [(a["rule"], a["silenced"]) for a in marked["alerts"]] == [("hot", False)]
        assert silence["active"] and silence["rule"] == "gone" and silence["by"] == "alice"
        stack.agents["down-1"].kill()
        gone = await expect_transition(client, *GONE_FIRING)
        assert gone["silenced"] is True
        firing = {(a["rule"], a["silenced"]) for a in stack.api(gateway)["firing"]}
        assert firing == {("hot", False), ("gone", True)}
        listed = stack.api(gateway, "/api/alerts/silences")["silences"]
        assert [s["id"] for s in listed] == [silence["id"]]
        expired = httpx.delete(f"{gateway.url}/api/alerts/silences/{silence['id']}", headers=as_operator)
        assert expired.status_code == 200 and expired.json()["active"] is False
        # Subscribers are told at once: the whole list again, with nothing marked.
        unmarked = await client.expect(
            lambda f: f.get("type") == "alerts" and any(a["rule"] == "gone" for a in f["alerts"]), 10
        )
        assert {(a["rule"], a["silenced"]) for a in unmarked["alerts"]} == {("hot", False), ("gone", False)}
        assert httpx.delete(f"{gateway.url}/api/alerts/silences/nope", headers=as_operator).status_code == 404
        firing = {(a["rule"], a["silenced"]) for a in stack.api(gateway)["firing"]}
        assert firing == {("hot", False), ("gone", False)}
        audit = httpx.get(gateway.url + "/api/audit", headers=as_operator).json()["entries"]
        actions = [(e["action"], e["outcome"]) for e in audit if e["action"] in ("silence", "unsilence")]
        assert actions == [  # newest first: the unknown id, the expiry, the silence, 400, 403
            ("unsilence", "refused"),
            ("unsilence", "accepted"),
            ("silence", "accepted"),
            ("silence", "refused"),
            ("silence", "refused"),
        ]
        await client.ws.close()
