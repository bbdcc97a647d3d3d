"""The dashboard with a fleet of 500 simulated hosts in a real headless Chromium: the overview on one
canvas, the host list's filters and sorting, a host's chart with its history (and `cpu` narrowed
to the hosts open), picked hosts as the exec target, an offline host, and a phone-sized screen."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from fleetdeck_common.targets import TargetPolicy, expand_targets
from testbed.browser import PHONE, chromium, logged_in_page
from testbed.procs import ROOT, Gateway, RedisServer, Service, start_agent, start_gateway, wait_until
from tests.support.stacks import Tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser

SIMULATED = 500
EVERYWHERE = TargetPolicy.from_entries(["127.0.0.0/8"], max_hosts=4096)

# The page's own cell hook, checked against the pixels: every cell is painted at least along its
# edge (a host not sampled yet is an outline; the others are filled).
PAINTED_CELLS = """(names) => {
  const canvas = document.getElementById("fleet-canvas");
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return names.filter((name) => {
    const cell = window.fleetdeckFleet.cell(name);
    if (!cell) return false;
    const x = (cell.x - rect.left - cell.size / 2) * scale;
    const y = (cell.y - rect.top - cell.size / 2) * scale;
    return ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data[3] > 0;
  }).length;
}"""
ROW_ORDER = """() => [...document.querySelectorAll("#host-rows .host-row:not([hidden])")]
  .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
  .map((row) => row.dataset.host)"""
VISIBLE_ROWS = """() => [...document.querySelectorAll("#host-rows .host-row:not([hidden])")]
  .map((row) => ({ host: row.dataset.host, offline: row.classList.contains("offline"),
                   top: row.getBoundingClientRect().top,
                   cpu: row.querySelector(".value").textContent, mem: row.querySelector(".mem").textContent,
                   labels: row.querySelector(".labels").textContent }))
  .sort((a, b) => a.top - b.top)"""


@dataclass
class SimStack:
    redis: RedisServer
    gateway: Gateway
    agent: Service
    logs: Path

    def hosts(self, token: str) -> dict[str, dict[str, Any]]:
        """The gateway's host list (GET /api/hosts) by name."""
        answer = httpx.get(self.gateway.url + "/api/hosts", headers={"Authorization": f"Bearer {token}"})
        return {h["host"]: h for h in answer.json()["hosts"]}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[SimStack]:
    """Its own Redis (the session's stays small), `fleetdeck-agent --simulate 500` and a gateway."""
    workdir = tmp_path_factory.mktemp("sim")
    redis = RedisServer(workdir)
    redis.start()
    agent = start_agent("sim", redis.url, workdir, 1.0, FLEETDECK_SIMULATE=str(SIMULATED))
    gateway = start_gateway(redis.url, workdir, tokens.file, name="gateway-sim")
    stack = SimStack(redis, gateway, agent, workdir)
    try:
        wait_until(
            lambda: sum(1 for h in stack.hosts(tokens.viewer).values() if "role" in h["labels"]) >= SIMULATED,
            20,
            what="500 simulated hosts with their labels",
        )
        yield stack
    finally:
        gateway.stop()
        agent.stop()
        redis.stop()


def cpu_scopes(sent: list[dict[str, Any]]) -> list[list[str] | None]:
    """What the page asked of `cpu`, in order: the host list it subscribed to, or None to stop."""
    scopes: list[list[str] | None] = []
    for frame in sent:
        if "cpu" in frame.get("topics", ()):
            scopes.append(frame.get("hosts") if frame["type"] == "subscribe" else None)
    return scopes


def expanded(expression: str) -> list[str]:
    return sorted(expand_targets(expression, EVERYWHERE))


async def overview_drawn(page: Page, count: int) -> None:
    await page.wait_for_function(
        "(n) => window.fleetdeckFleet && window.fleetdeckFleet.count() === n", arg=count
    )


async def hover(page: Page, host: str) -> str:
    cell = await page.evaluate("(h) => window.fleetdeckFleet.cell(h)", host)
    await page.mouse.move(cell["x"], cell["y"])
    tip = page.locator("#fleet-tip")
    await tip.filter(has_text=host).wait_for()
    return await tip.text_content() or ""


async def test_500_hosts_on_one_canvas_filtered_sorted_opened_and_picked_as_targets(
    sim: SimStack, tokens: Tokens, artifacts: Path
) -> None:
    known = sim.hosts(tokens.viewer)
    names = sorted(known)
    sent: list[dict[str, Any]] = []
    async with chromium() as browser:
        page = await logged_in_page(browser, sim.gateway.url, tokens.operator, sent=sent)
        # This stack runs no exec worker: the run panel says so instead of leaving jobs silently queued.
        await page.locator("#exec-workers", has_text="No exec worker is running").wait_for(state="attached")
        # The overview: a painted cell for every host, on one canvas; the list builds a few rows only.
        await overview_drawn(page, len(known))
        assert await page.evaluate(PAINTED_CELLS, names) == len(known)
        assert await page.locator("canvas").count() < 5
        assert await page.locator("#host-rows .host-row").count() < 80
        online = sum(1 for h in known.values() if h["online"])
        await page.wait_for_selector(f"#fleet-online:text-is('{online} online')")
        assert cpu_scopes(sent) == []  # no host open: no per-host samples at all
        host = names[7]
        text = await hover(page, host)
        labels = known[host]["labels"]
        assert "CPU" in text and f"role={labels['role']}" in text and f"dc={labels['dc']}" in text

        # Filter by a label and a search, then sort.
        dbs = sorted(h for h, info in known.items() if info["labels"].get("role") == "db")
        await page.select_option('select[data-label="role"]', "db")
        await page.wait_for_selector(f"#host-count:text-is('{len(dbs)} of {len(known)} hosts')")
        rows = await page.evaluate(VISIBLE_ROWS)
        assert rows and all("role=db" in row["labels"] for row in rows)
        await page.click("#target-filter")
        assert await page.input_value("#exec-targets") == "@role=db"
        await page.select_option("#host-sort", "name")
        await page.wait_for_function(f"(first) => ({ROW_ORDER})()[0] === first", arg=min(dbs, key=natural))
        await page.select_option("#host-sort", "cpu")
        await page.wait_for_function(
            f"""() => {{
              const values = ({ROW_ORDER})().map((host) => parseFloat(
                document.querySelector(`#host-rows .host-row[data-host="${{host}}"] .value`).textContent));
              return values.length > 5 && values.every((v, i) => i === 0 || v <= values[i - 1]);
            }}"""
        )
        await page.select_option("#host-sort", "mem")
        # The list is sorted again on the next frame it draws, not at once.
        await page.wait_for_function(
            f"""() => {{
              const mems = ({VISIBLE_ROWS})().filter((row) => !row.offline).map((row) => parseFloat(row.mem));
              return mems.length > 5 && mems.every((v, i) => i === 0 || v <= mems[i - 1]);
            }}"""
        )
        in_eu = sorted(h for h in dbs if known[h]["labels"]["dc"] == "eu-west")
        await page.fill("#host-search", "eu-west")
        await page.wait_for_selector(f"#host-count:text-is('{len(in_eu)} of {len(known)} hosts')")
        await page.click("#target-filter")  # a search and a label: named one by one, folded
        assert expanded(await page.input_value("#exec-targets")) == sorted(
            expanded(",".join(known[h]["address"] for h in in_eu))
        )

        # Open a host: its chart, filled from history, and `cpu` narrowed to exactly that host.
        await page.select_option("#host-sort", "name")
        await page.wait_for_function(
            "() => Number(document.getElementById('fleet-chart').dataset.points) >= 4"
        )
        opened = in_eu[0]
        opened_at = await page.evaluate("() => Date.now()")
        await page.click(f'#host-rows .host-row[data-host="{opened}"] .name')
        card = f'.chart-card[data-host="{opened}"]'
        await page.wait_for_function(
            "(sel) => Number(document.querySelector(sel)?.dataset.points) >= 3", arg=card
        )
        chart = "echarts.getInstanceByDom(document.querySelector(sel + ' .chart'))"
        first_point = await page.evaluate(f"(sel) => {chart}.getOption().series[0].data[0][0]", card)
        assert first_point < opened_at - 2000  # history from before it was opened, not only live
        await eventually(lambda: cpu_scopes(sent)[-1:] == [[opened]], 10, "cpu narrowed to the opened host")
        # Per-core lines on demand, one per core, with a legend (from the live samples: the stored
        # history keeps no per-core values).
        await page.click(f"{card} button.cores")
        cores = known[opened]["cpus"]
        await page.wait_for_function(
            f"([sel, want]) => {chart}.getOption().series.filter((s) => s.type === 'line').length === want",
            arg=[card, 1 + cores],
        )
        legend = await page.evaluate(f"(sel) => {chart}.getOption().legend[0].data", card)
        assert legend[:2] == ["total", "cpu0"]
        # Pin a second host; close the first; close the second: the subscription follows.
        pinned = in_eu[1]
        await page.click(f'#host-rows .host-row[data-host="{pinned}"] .pin')
        await eventually(
            lambda: cpu_scopes(sent)[-1:] == [sorted([opened, pinned], key=natural)], 10, "both hosts"
        )
        await page.click(f"{card} button.close")
        await eventually(lambda: cpu_scopes(sent)[-1:] == [[pinned]], 10, "only the pinned host")
        await page.wait_for_selector(card, state="detached")
        await page.click(f'.chart-card[data-host="{pinned}"] button.close')
        await eventually(lambda: cpu_scopes(sent)[-1:] == [None], 10, "cpu unsubscribed")

        # Hosts picked on the overview (click, shift-click, shift-drag) become the target in one click.
        await page.fill("#host-search", "")
        await page.select_option('select[data-label="role"]', "")
        await page.evaluate("() => { document.querySelector('.main').scrollTop = 0; }")
        a, b, c, d = names[3], names[40], names[200], names[262]
        cell = {h: await page.evaluate("(h) => window.fleetdeckFleet.cell(h)", h) for h in (a, b, c, d)}
        await page.mouse.click(cell[a]["x"], cell[a]["y"])
        await page.keyboard.down("Shift")
        await page.mouse.click(cell[b]["x"], cell[b]["y"])
        await page.mouse.move(cell[c]["x"], cell[c]["y"])
        await page.mouse.down()
        await page.mouse.move(cell[d]["x"], cell[d]["y"], steps=5)
        await page.mouse.up()
        await page.keyboard.up("Shift")
        selected = await page.evaluate("() => window.fleetdeckFleet.selected()")
        assert {a, b, c, d} <= set(selected) and len(selected) > 4
        await page.wait_for_selector(f"#selection-count:text-is('{len(selected)} selected')")
        await page.click("#target-selection")
        field = await page.input_value("#exec-targets")
        assert "[" in field  # folded into node sets, not a list of 60 addresses
        assert expanded(field) == expanded(",".join(known[h]["address"] for h in selected))
        # The top 10 by CPU, in one click.
        await page.click("#target-top")
        top = await page.evaluate("() => window.fleetdeckFleet.selected()")
        assert len(top) == 10
        assert expanded(await page.input_value("#exec-targets")) == expanded(
            ",".join(known[h]["address"] for h in top)
        )
        await hover(page, top[0])
        await page.screenshot(path=str(artifacts / "fleet-desktop.png"))
        # The page names its icon, and the gateway serves it.
        icon = await page.get_attribute('link[rel="icon"]', "href")
        assert icon is not None
        answer = await page.request.get(sim.gateway.url + icon)
        assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")


async def test_an_offline_host_is_marked_and_says_when_it_was_last_seen(
    sim: SimStack, tokens: Tokens, artifacts: Path
) -> None:
    lonely = start_agent("lonely-01", sim.redis.url, sim.logs, 0.5, FLEETDECK_AGENT_LABELS="role=canary")
    try:
        wait_until(lambda: sim.hosts(tokens.viewer).get("lonely-01", {}).get("online"), 15, what="lonely-01")
        async with chromium() as browser:
            page = await logged_in_page(browser, sim.gateway.url, tokens.operator)
            await overview_drawn(page, len(sim.hosts(tokens.viewer)))
            await page.fill("#host-search", "lonely")
            row = '#host-rows .host-row[data-host="lonely-01"]'
            await page.wait_for_selector(f"{row}:not(.offline)")
            await page.click(f"{row} .name")
            card = '.chart-card[data-host="lonely-01"]'
            await page.wait_for_selector(f"{card}:not(.offline)")
            lonely.stop()
            await page.wait_for_selector(f"{row}.offline")
            assert "last seen" in (await page.text_content(f"{row} .labels") or "")
            await page.wait_for_selector(f"{card}.offline")
            status = await page.text_content(f"{card} .status") or ""
            assert status.startswith("offline · last seen ")
            await page.wait_for_selector("#fleet-offline.has-offline")
            tip = await hover(page, "lonely-01")
            assert "offline" in tip and "last seen" in tip
            await page.screenshot(path=str(artifacts / "fleet-offline-host.png"))
    finally:
        lonely.stop()


async def test_a_phone_shows_the_whole_fleet_without_scrolling_sideways(
    sim: SimStack, tokens: Tokens, artifacts: Path
) -> None:
    known = sim.hosts(tokens.viewer)
    async with chromium() as browser:
        page = await logged_in_page(browser, sim.gateway.url, tokens.viewer, viewport=PHONE)
        await overview_drawn(page, len(known))
        assert await page.evaluate(PAINTED_CELLS, sorted(known)) == len(known)
        box = await page.locator("#fleet-canvas").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        size = await page.evaluate("(h) => window.fleetdeckFleet.cell(h).size", sorted(known)[0])
        assert size >= 8  # big enough to tap
        await page.wait_for_function(
            "() => Number(document.getElementById('fleet-chart').dataset.points) >= 2"
        )
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=str(artifacts / "fleet-phone.png"), full_page=True)
        await page.click("#tabs [data-tab=hosts]")
        await page.wait_for_selector("#host-rows .host-row:not([hidden])")
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=str(artifacts / "fleet-phone-hosts.png"))
        # A viewer sees why Run is unavailable, on the Run tab.
        await page.click("#tabs [data-tab=run]")
        await page.locator("#exec-why", has_text="viewer").wait_for()
        assert await page.is_disabled("#exec-run")


def natural(name: str) -> list[object]:
    """web2 before web10, as the dashboard sorts names."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_dashboards_pure_modules_pass_their_node_tests() -> None:
    tests = sorted(str(p) for p in (ROOT / "web" / "test").glob("*.test.js"))
    assert tests
    result = subprocess.run(
        ["node", "--test", *tests], cwd=ROOT / "web", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
