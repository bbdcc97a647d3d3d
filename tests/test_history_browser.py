"""The dashboard's history in a real headless Chromium, against a real gateway, worker, agent and
Redis: range buttons and drag-to-zoom ask GET /api/hosts/{host}/history and redraw the span, job
marks on a host's chart open their job, the fleet chart is filled from history right after a
reload, and times switch to UTC and stay so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from testbed.browser import chromium, logged_in_page
from testbed.procs import Gateway, Service, start_agent, wait_until
from tests.support.stacks import Fleet, Tokens, private_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser

HOST = "127.0.0.7"  # an SSH host of the test fleet that also runs an agent under that name
CARD = f'.chart-card[data-host="{HOST}"]'
HOST_CHART = f"{CARD} .chart"
CHART = "echarts.getInstanceByDom(document.querySelector(sel))"
SPAN = f"(sel) => {{ const x = {CHART}.getOption().xAxis[0]; return x.max - x.min; }}"
# The page coordinates of a job's mark, or of two times along the x axis at mid-height.
MARK = f"""([sel, job]) => {{
  const chart = {CHART};
  const series = chart.getOption().series;
  const i = series.findIndex((s) => s.name === "jobs");
  const item = series[i].data.find((d) => d.job === job);
  const [x, y] = chart.convertToPixel({{ seriesIndex: i }}, item.value);
  const r = document.querySelector(sel).getBoundingClientRect();
  return {{ x: r.left + x, y: r.top + y }};
}}"""
ALONG = f"""([sel, times]) => {{
  const chart = {CHART};
  const r = document.querySelector(sel).getBoundingClientRect();
  const x = (t) => r.left + chart.convertToPixel({{ xAxisIndex: 0 }}, t);
  return times.map((t) => ({{ x: x(t), y: r.top + r.height / 2 }}));
}}"""


@dataclass
class HistoryStack:
    gateway: Gateway
    agent: Service

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(self.gateway.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def run(self, token: str, targets: str, command: str) -> str:
        """Queue a job and wait until it is done; its id."""
        answer = httpx.post(
            self.gateway.url + "/api/jobs",
            json={"targets": targets, "command": command},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202, answer.text
        job: str = answer.json()["job"]
        wait_until(lambda: self.get(f"/api/jobs/{job}", token).json()["state"] == "done", 30, what=job)
        return job


@pytest.fixture(scope="module")
def hist(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens, fleet: Fleet) -> Iterator[HistoryStack]:
    workdir = tmp_path_factory.mktemp("history-browser")
    with private_stack(workdir, tokens, fleet, "w-history") as private:
        agent = start_agent(HOST, private.redis.url, workdir, 0.5)
        try:
            stack = HistoryStack(private.gateway, agent)
            wait_until(
                lambda: any(
                    h["host"] == HOST for h in stack.get("/api/hosts", tokens.viewer).json()["hosts"]
                ),
                20,
                what="the agent",
            )
            yield stack
        finally:
            agent.stop()


async def open_card(page: Page) -> None:
    await page.fill("#host-search", HOST)
    row = f'#host-rows .host-row[data-host="{HOST}"]'
    await page.wait_for_selector(f"{row}:not(.offline)")
    await page.click(f"{row} .pin")
    await page.wait_for_selector(CARD)
    await page.wait_for_function("(sel) => Number(document.querySelector(sel).dataset.points) > 2", arg=CARD)


async def shown(page: Page, sel: str, label: str) -> None:
    """Wait until the chart at `sel` shows `label` ("live", a button's label, "zoom"), loaded."""
    await page.wait_for_function(
        "([sel, label]) => { const d = document.querySelector(sel).dataset;"
        " return d.range === label && !d.loading; }",
        arg=[sel, label],
    )
    # The chart redraws on the next animation frame after the data is in: let two frames pass.
    await page.evaluate("() => new Promise((go) => requestAnimationFrame(() => requestAnimationFrame(go)))")


async def test_range_buttons_zoom_and_job_marks_on_a_host_chart(
    hist: HistoryStack, tokens: Tokens, artifacts: Path
) -> None:
    job = hist.run(tokens.operator, HOST, "true")
    asked: list[str] = []
    async with chromium() as browser:
        page = await logged_in_page(browser, hist.gateway.url, tokens.operator)
        page.on("request", lambda request: asked.append(request.url))
        await open_card(page)
        # The mark of the job, coloured, clicked: the run pane shows that job.
        await page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel).dataset.marks) >= n", arg=[CARD, 1]
        )
        assert any(f"/api/jobs?host={HOST}" in url for url in asked)
        current = page.locator(f'#job-list li.job.current[data-job="{job}"]')

        async def click_mark() -> bool:
            # The live chart moves on every second: aim again until the click lands on the mark.
            spot = await page.evaluate(MARK, [HOST_CHART, job])
            await page.mouse.click(spot["x"], spot["y"])
            try:
                await current.wait_for(timeout=1000)
            except PlaywrightTimeout:
                return False
            return True

        await eventually(click_mark, 20, "the job's mark clicked")
        await page.screenshot(path=str(artifacts / "history-job-mark.png"), full_page=True)

        # 6 h: the axis spans six hours, the samples come from the history API at a coarser step.
        # The range's marks are asked for too: the jobs queued in those six hours (not the last 100).
        range_marks = f"/api/jobs?host={HOST}&since="
        async with page.expect_response(lambda answer: range_marks in answer.url) as marks:
            await page.click(f'{CARD} .range-bar button[data-range="6 h"]')
        answer = await marks.value
        assert answer.ok and job in {j["job"] for j in (await answer.json())["jobs"]}
        await shown(page, CARD, "6 h")
        assert await page.evaluate(SPAN, HOST_CHART) == 6 * 3600 * 1000
        assert any(f"/api/hosts/{HOST}/history?since=" in url for url in asked)
        coarse = int(await page.get_attribute(CARD, "data-step") or 0)
        assert coarse >= 60
        # (no points yet at 1 min: the agent has not run for a whole minute)
        await page.screenshot(path=str(artifacts / "history-6h.png"), full_page=True)

        # Drag across the last ten minutes: a zoom, answered at a finer step.
        until = int(await page.get_attribute(CARD, "data-until") or 0) * 1000
        start, end = await page.evaluate(ALONG, [HOST_CHART, [until - 10 * 60_000, until - 1000]])
        await page.mouse.move(start["x"], start["y"])
        await page.mouse.down()
        await page.mouse.move(end["x"], end["y"], steps=8)
        await page.mouse.up()
        await shown(page, CARD, "zoom")
        assert int(await page.get_attribute(CARD, "data-step") or 0) < coarse
        assert abs(await page.evaluate(SPAN, HOST_CHART) - 10 * 60_000) < 60_000
        assert int(await page.get_attribute(CARD, "data-points") or 0) >= 1  # written every 5 s
        await page.screenshot(path=str(artifacts / "history-zoom.png"), full_page=True)

        # Back to live, still streaming.
        await page.screenshot(path=str(artifacts / "history-job-mark-after.png"), full_page=True)
        await page.click(f"{CARD} .range-bar button.live")
        await shown(page, CARD, "live")
        before = int(await page.get_attribute(CARD, "data-points") or 0)
        await page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel).dataset.points) > n", arg=[CARD, before]
        )


async def test_fleet_chart_is_filled_after_a_reload_and_times_switch_to_utc(
    hist: HistoryStack, tokens: Tokens, artifacts: Path
) -> None:
    asked: list[str] = []
    # The agent writes its seconds every few seconds: wait until the fleet's history holds five.
    wait_until(
        lambda: len(hist.get("/api/fleet/history?since=15m", tokens.viewer).json()["samples"]) >= 5,
        30,
        what="five seconds of fleet history",
    )
    async with chromium() as browser:
        page = await logged_in_page(browser, hist.gateway.url, tokens.viewer)
        page.on("request", lambda request: asked.append(request.url))
        await page.reload()
        # Filled from GET /api/fleet/history before (and under) the live points.
        await page.wait_for_selector("#fleet-chart[data-seeded]")
        seeded = int(await page.get_attribute("#fleet-chart", "data-seeded") or 0)
        assert seeded >= 5
        assert int(await page.get_attribute("#fleet-chart", "data-points") or 0) >= seeded
        assert any("/api/fleet/history?since=" in url for url in asked)
        await page.screenshot(path=str(artifacts / "history-fleet-reload.png"), full_page=True)

        await page.click('#pane-fleet .range-bar button[data-range="24 h"]')
        await shown(page, "#fleet-chart", "24 h")
        assert await page.evaluate(SPAN, "#fleet-chart") == 86400 * 1000

        # UTC, kept across a reload; the axis labels follow.
        label = (
            "(sel) => { const x = "
            + CHART
            + ".getOption().xAxis[0]; return x.axisLabel.formatter(Date.UTC(2026, 0, 2, 3, 4)); }"
        )
        await page.click("#zone-toggle")
        await page.wait_for_selector('#zone-toggle[data-zone="utc"]')
        assert await page.text_content("#zone-toggle") == "UTC"
        await page.reload()
        await page.wait_for_selector('#zone-toggle[data-zone="utc"]')
        await page.wait_for_selector("#fleet-chart[data-seeded]")
        assert await page.evaluate(label, "#fleet-chart") in ("03:04", "03:04:00")
        await page.screenshot(path=str(artifacts / "history-fleet-utc.png"), full_page=True)
