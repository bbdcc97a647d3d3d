"""The dashboard on compact fleet frames in a real headless Chromium: 2,000 simulated hosts drawn
from binary frames (JSON still there for `?fleet_format=json`), and the dashboard's own decoder
giving exactly what the Python one gives on the same bytes, corrupt ones included."""

from __future__ import annotations

import asyncio
import base64
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import WebSocket

from fleetdeck_common.fleet_compact import CompactFrameError, Decoder, Encoder
from fleetdeck_common.messages import FleetHost
from testbed.browser import chromium, logged_in_page
from testbed.procs import Gateway, RedisServer, start_agent, start_gateway, wait_until
from tests.support.stacks import Tokens

pytestmark = pytest.mark.browser

SIMULATED = 2000


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[Gateway]:
    """Its own Redis, `fleetdeck-agent --simulate 2000` and a gateway."""
    workdir = tmp_path_factory.mktemp("compact")
    redis = RedisServer(workdir)
    redis.start()
    agent = start_agent("sim", redis.url, workdir, 1.0, FLEETDECK_SIMULATE=str(SIMULATED))
    gateway = start_gateway(redis.url, workdir, tokens.file, name="gateway-compact-browser")
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    try:
        wait_until(
            lambda: len(httpx.get(gateway.url + "/api/hosts", headers=viewer).json()["hosts"]) >= SIMULATED,
            60,
            what=f"{SIMULATED} simulated hosts",
        )
        yield gateway
    finally:
        gateway.stop()
        agent.stop()
        redis.stop()


def watch_frames(received: dict[str, int], enough: asyncio.Event) -> Callable[[WebSocket], None]:
    """A page's `websocket` handler counting binary messages and JSON `fleet` frames received;
    `enough` is set once three fleet frames came."""

    def record(ws: WebSocket) -> None:
        def seen(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                received["binary"] += 1
                received["bytes"] += len(payload)
            elif '"type":"fleet"' in payload:
                received["json"] += 1
            if received["binary"] + received["json"] >= 3:
                enough.set()

        ws.on("framereceived", seen)

    return record


async def test_2000_hosts_drawn_from_compact_frames_and_from_json_on_request(
    sim: Gateway, tokens: Tokens, artifacts: Path
) -> None:
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    hosts = httpx.get(sim.url + "/api/hosts", headers=viewer).json()["hosts"]
    async with chromium() as browser:
        for format_ in ("compact", "json"):
            received = {"binary": 0, "bytes": 0, "json": 0}
            enough = asyncio.Event()
            page = await logged_in_page(browser, sim.url, tokens.viewer)
            page.on("websocket", watch_frames(received, enough))
            await page.goto(sim.url + ("/" if format_ == "compact" else "/?fleet_format=json"))
            await page.wait_for_selector('#conn-state[data-state="online"]')
            await page.wait_for_function(
                "(n) => window.fleetdeckFleet && window.fleetdeckFleet.count() === n", arg=len(hosts)
            )
            # Every host counted online or offline from the frames' online bits (which hosts are
            # online moves under a loaded machine, so not compared with the API's at one moment).
            await page.wait_for_function(
                """(n) => {
                  const count = (id) => parseInt(document.getElementById(id).textContent, 10);
                  return count("fleet-online") > 0 && count("fleet-online") + count("fleet-offline") === n;
                }""",
                arg=len(hosts),
            )
            await asyncio.wait_for(enough.wait(), 30)
            if format_ == "compact":
                assert received["binary"] >= 3 and received["json"] == 0
                await page.screenshot(path=str(artifacts / "fleet-compact-2000.png"), full_page=True)
            else:
                assert received["json"] >= 3 and received["binary"] == 0
            await page.context.close()


def fleet_frames(rng: random.Random) -> list[bytes]:
    """An encoder's frames over a changing fleet (full, changes, catch-up), with corrupt ones among them."""
    encoder = Encoder()
    names = [f"host-{i}" for i in range(40)] + ["ünïcode-ß", "emoji-🚀"]
    labels = [{}, {"role": "web", "dc": "eu-west"}, {"role": "db", "env": "prod", "ökö": "ä"}]
    state: dict[str, FleetHost] = {}
    frames: list[bytes] = []

    def maybe() -> float | None:
        return None if rng.random() < 0.1 else round(rng.uniform(0, 100), rng.choice([0, 1, 2, 3]))

    def at_random(name: str) -> FleetHost:
        return FleetHost(host=name, online=rng.random() < 0.8, total=maybe(), mem=maybe(),
                         load1=maybe(), labels=rng.choice(labels), disk=maybe())  # fmt: skip

    for tick in range(120):
        moved = [at_random(n) for n in rng.sample(names, rng.randint(0, 15))]
        stays = {h.host for h in moved}
        gone = [
            n for n in rng.sample(sorted(state), min(2, len(state))) if rng.random() < 0.2 and n not in stays
        ]
        state.update({h.host: h for h in moved})
        for name in gone:
            del state[name]
        hosts = sorted(state.values(), key=lambda h: h.host)
        if tick % 20 == 0:
            frames.append(encoder.full(float(tick), hosts))
            encoder.resync(hosts)
            continue
        data = encoder.changes(tick + 0.125, sorted(moved, key=lambda h: h.host), gone)
        if data is not None:
            frames.append(data)
        if tick % 7 == 0:
            frames.append(encoder.catch_up(tick + 0.5, hosts, gone))
        if tick % 9 == 0 and frames:
            good = frames[-1]
            cut = bytearray(good)
            cut[rng.randrange(len(cut))] ^= 1 << rng.randrange(8)
            frames += [good[: rng.randrange(len(good))], bytes(cut)]
    return frames


async def test_the_dashboards_decoder_reads_what_the_python_decoder_reads(
    sim: Gateway, tokens: Tokens
) -> None:
    frames = fleet_frames(random.Random(24))
    python: list[dict[str, Any]] = []
    decoder = Decoder()
    for data in frames:
        try:
            python.append(decoder.feed(data))
        except CompactFrameError:
            python.append({"refused": True})
    assert 8 <= sum(1 for f in python if "refused" in f) < len(python) - 100
    async with chromium() as browser:
        page = await logged_in_page(browser, sim.url, tokens.viewer)
        decoded = await page.evaluate(
            """async (frames) => {
              const { FleetDecoder, CompactFrameError } = await import("/static/js/fleetcompact.js");
              const decoder = new FleetDecoder();
              return frames.map((b64) => {
                try { return decoder.feed(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))); }
                catch (e) { if (e instanceof CompactFrameError) return { refused: true }; throw e; }
              });
            }""",
            [base64.b64encode(f).decode() for f in frames],
        )
    for index, (js, py) in enumerate(zip(decoded, python, strict=True)):
        assert same(js, py), index


def same(js: Any, py: Any) -> bool:
    """Equal, as a JavaScript value can be to a Python one: 78 is 78.0, and a NaN (a corrupt frame's
    time) is a NaN."""
    if isinstance(py, float) and math.isnan(py):
        return isinstance(js, float) and math.isnan(js)
    if isinstance(py, dict):
        return isinstance(js, dict) and js.keys() == py.keys() and all(same(js[k], py[k]) for k in py)
    if isinstance(py, list):
        return isinstance(js, list) and len(js) == len(py) and all(map(same, js, py))
    return (type(js) is type(py) and js == py) or (isinstance(py, float) and isinstance(js, int) and js == py)
