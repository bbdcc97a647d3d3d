"""Compact fleet frames from a real gateway fed by a simulated fleet through a real Redis: a JSON and
a compact follower agree on every host at the same tick; a bad `fleet_format` is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from fleetdeck_common.fleet_compact import code
from testbed.procs import RedisServer, start_agent, start_gateway, wait_until
from tests.support.stacks import Tokens
from tests.support.wsclient import Frame, WsClient

HOSTS = 60


def rounded(entry: dict[str, Any]) -> dict[str, Any]:
    values = {
        k: None if entry[k] is None else (code(entry[k]) - 1) / 10 for k in ("total", "mem", "load1", "disk")
    }
    return entry | values


async def follow(client: WsClient, views: dict[float, dict[str, Frame]], ticks: int) -> None:
    """Read `ticks` fleet frames, keeping what the client holds after each, by the frame's ts."""
    view: dict[str, Frame] = {}
    for _ in range(ticks):
        frame = await client.expect_type("fleet", timeout=10)
        if frame["full"]:
            view = {}
        view.update({h["host"]: h for h in frame["hosts"]})
        views[frame["ts"]] = dict(view)


async def test_json_and_compact_followers_agree_on_every_host_at_the_same_tick(
    tmp_path: Path, tokens: Tokens
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    agent = start_agent("sim", redis.url, tmp_path, 1.0, FLEETDECK_SIMULATE=str(HOSTS))
    gateway = start_gateway(redis.url, tmp_path, tokens.file, name="gateway-compact")
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    try:
        wait_until(
            lambda: len(httpx.get(gateway.url + "/api/hosts", headers=viewer).json()["hosts"]) == HOSTS,
            20,
            what=f"{HOSTS} hosts known",
        )
        plain = await WsClient.open(gateway.ws_url, tokens.viewer)
        compact = await WsClient.open(gateway.ws_url + "?batch=1", tokens.viewer)
        for client in (plain, compact):
            await client.expect_type("hello")
        # A format that does not exist: an error naming the field, and the socket keeps serving.
        await compact.send(
            {"type": "subscribe", "topics": ["fleet"], "fleet_format": "msgpack", "ref": "bad"}
        )
        refused = await compact.expect_type("error", ref="bad")
        assert refused["code"] == "bad_request" and "fleet_format" in refused["message"]
        await plain.send({"type": "subscribe", "topics": ["fleet"], "fleet_format": "json", "ref": "j"})
        await compact.send({"type": "subscribe", "topics": ["fleet"], "fleet_format": "compact", "ref": "c"})
        await plain.expect_type("subscribed", ref="j")
        await compact.expect_type("subscribed", ref="c")
        json_views: dict[float, dict[str, Frame]] = {}
        compact_views: dict[float, dict[str, Frame]] = {}
        await asyncio.gather(follow(plain, json_views, 6), follow(compact, compact_views, 6))
        assert plain.binary_bytes == [] and len(compact.binary_bytes) >= 6
        # Past each one's full frame and catching up, the ticks both saw: the same fleet, rounded.
        common = sorted(set(json_views) & set(compact_views))[1:]
        assert len(common) >= 3
        for ts in common:
            assert len(compact_views[ts]) == HOSTS
            assert compact_views[ts] == {h: rounded(e) for h, e in json_views[ts].items()}
        # Past the full frame and the catch-up (every host defined again): a few bytes a host.
        assert max(compact.binary_bytes[2:]) < HOSTS * 8
        await plain.close()
        await compact.close()
    finally:
        gateway.stop()
        agent.stop()
        redis.stop()
