"""`hosts_format: "changes"` on a real gateway fed through a real Redis by a simulated fleet and one
real agent: the change follower is sent the list once, then only the host whose presence changed,
and holds the same list as a v1 follower, which is sent the whole list again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from testbed.procs import RedisServer, start_agent, start_gateway, wait_until
from tests.support.stacks import Tokens
from tests.support.wsclient import Frame, WsClient

SIMULATED = 20


async def until_solo_offline(client: WsClient, view: dict[str, Frame]) -> tuple[Frame, int]:
    """Apply `hosts` frames to `view` until one says solo went offline; that frame and its size."""
    while True:
        frame = await client.expect_type("hosts", timeout=30)
        if frame.get("full", True):
            view.clear()
        for gone in frame.get("gone") or []:
            view.pop(gone, None)
        view.update({h["host"]: h for h in frame["hosts"]})
        if "solo" in view and not view["solo"]["online"]:
            return frame, client.text_bytes[-1]


def presence(view: dict[str, Frame]) -> dict[str, tuple[Any, ...]]:
    """What both followers must agree on. An online host's last_seen is not sent again to a change
    follower (it is heard live), an offline one's is."""
    return {
        name: (h["online"], h["address"], h["labels"], h["cpus"], None if h["online"] else h["last_seen"])
        for name, h in view.items()
    }


async def test_a_change_follower_gets_only_what_changed_and_holds_what_a_v1_follower_holds(
    tmp_path: Path, tokens: Tokens
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    simulated = start_agent("sim", redis.url, tmp_path, 1.0, FLEETDECK_SIMULATE=str(SIMULATED))
    solo = start_agent("solo", redis.url, tmp_path, 0.5)
    gateway = start_gateway(redis.url, tmp_path, tokens.file, name="gateway-hosts-changes")
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    try:
        wait_until(
            lambda: (
                len(httpx.get(gateway.url + "/api/hosts", headers=viewer).json()["hosts"]) == SIMULATED + 1
            ),
            30,
            what=f"{SIMULATED + 1} hosts known",
        )
        v1 = await WsClient.open(gateway.ws_url, tokens.viewer)
        changes = await WsClient.open(gateway.ws_url, tokens.viewer)
        for client in (v1, changes):
            await client.expect_type("hello")
        await v1.send({"type": "subscribe", "topics": ["hosts"], "ref": "v"})
        await changes.send({"type": "subscribe", "topics": ["hosts"], "hosts_format": "changes", "ref": "c"})
        await v1.expect_type("subscribed", ref="v")
        await changes.expect_type("subscribed", ref="c")
        whole = await changes.expect_type("hosts")
        assert whole["full"] is True and len(whole["hosts"]) == SIMULATED + 1
        listed = changes.text_bytes[-1]
        v1_view: dict[str, Frame] = {h["host"]: h for h in whole["hosts"]}
        changes_view = dict(v1_view)
        solo.stop()
        v1_frame, v1_size = await until_solo_offline(v1, v1_view)
        change, change_size = await until_solo_offline(changes, changes_view)
        assert "full" not in v1_frame and len(v1_frame["hosts"]) == SIMULATED + 1
        assert change["full"] is False and change["gone"] == []
        assert "solo" in {h["host"] for h in change["hosts"]} and len(change["hosts"]) < SIMULATED
        assert change_size < listed / 4 and v1_size > listed / 2
        assert presence(changes_view) == presence(v1_view)
        # Asking for the v1 list again: the whole list at once, in that form.
        await changes.send({"type": "subscribe", "topics": ["hosts"], "hosts_format": "full", "ref": "f"})
        await changes.expect_type("subscribed", ref="f")
        again = await changes.expect_type("hosts")
        assert "full" not in again and len(again["hosts"]) == SIMULATED + 1
        await v1.close()
        await changes.close()
    finally:
        gateway.stop()
        simulated.stop()
        solo.stop()
        redis.stop()
