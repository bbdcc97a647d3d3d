"""Alerts on the dashboard in a real headless Chromium, against a real gateway evaluating a rules
file, real agents (60 simulated hosts and one canary) and Redis: the strip's counts, the firing
hosts outlined on the overview in their severity's colour, the panel's rows, "Run on these hosts"
filling `@alert=RULE`, an `offline` alert once the canary's agent is killed, a silence from the
panel, and a viewer who sees the alerts but no silence action."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from testbed.browser import PHONE, chromium, logged_in_page
from testbed.procs import Gateway, RedisServer, Service, start_agent, start_gateway, wait_until
from tests.support.stacks import Tokens

pytestmark = pytest.mark.browser

SIMULATED = 60
CANARY = "canary-01"
RULES = """\
rules:
  - name: web-busy
    expr: total >= 0
    targets: "@role=web"
    severity: warning
    summary: "{host} is busy at {value}"
  - name: canary-gone
    expr: offline
    targets: "@role=canary"
    severity: critical
    summary: "{host} stopped reporting"
"""
# The outline colours fleetview.js draws, as the canvas holds them.
WARNING = [210, 153, 34]
CRITICAL = [248, 81, 73]
SILENCED = [125, 139, 153]
# The colour of a cell's outline: the pixel one in from the middle of its left edge.
EDGE = """(name) => {
  const canvas = document.getElementById("fleet-canvas");
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  const cell = window.fleetdeckFleet.cell(name);
  const x = (cell.x - rect.left - cell.size / 2 + 1) * scale;
  const y = (cell.y - rect.top) * scale;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return [...ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3)];
}"""
ROWS = """(rule) => [...document.querySelectorAll(`.alert-rule[data-rule="${rule}"] tr[data-host]`)]
  .map((tr) => ({ host: tr.dataset.host, value: tr.querySelector(".value").textContent,
                  summary: tr.querySelector(".summary").textContent,
                  silenced: tr.classList.contains("silenced") }))"""


@dataclass
class AlertStack:
    redis: RedisServer
    gateway: Gateway
    agents: dict[str, Service]

    def get(self, path: str, token: str) -> Any:
        answer = httpx.get(self.gateway.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def firing(self, token: str, rule: str) -> set[str]:
        """The hosts on which `rule` fires, as GET /api/alerts says."""
        return {a["host"] for a in self.get("/api/alerts", token)["firing"] if a["rule"] == rule}


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[AlertStack]:
    """Its own Redis, 60 simulated hosts, a canary agent, and a gateway with two rules."""
    workdir = tmp_path_factory.mktemp("alerts")
    rules = workdir / "rules.yaml"
    rules.write_text(RULES)
    redis = RedisServer(workdir)
    redis.start()
    agents = {
        "sim": start_agent("sim", redis.url, workdir, 1.0, FLEETDECK_SIMULATE=str(SIMULATED)),
        CANARY: start_agent(CANARY, redis.url, workdir, 0.5, FLEETDECK_AGENT_LABELS="role=canary"),
    }
    gateway = start_gateway(
        redis.url, workdir, tokens.file, name="gateway-alerts", FLEETDECK_ALERT_RULES=str(rules)
    )
    stack = AlertStack(redis, gateway, agents)
    try:
        wait_until(
            lambda: (
                sum(1 for h in stack.get("/api/hosts", tokens.viewer)["hosts"] if h["online"]) > SIMULATED
            ),
            20,
            what="the simulated hosts and the canary online",
        )
        yield stack
    finally:
        gateway.stop()
        for agent in agents.values():
            agent.stop()
        redis.stop()


async def strip_says(page: Page, severity: str, count: int, within: float = 30) -> None:
    await page.wait_for_selector(
        f"#alert-counts [data-severity={severity}]:text-is('{count} {severity}')", timeout=within * 1000
    )


async def test_the_strip_outlines_panel_and_run_on_these_hosts_follow_what_fires(
    alerting: AlertStack, tokens: Tokens, artifacts: Path
) -> None:
    def known() -> dict[str, Any]:
        return {h["host"]: h for h in alerting.get("/api/hosts", tokens.viewer)["hosts"]}

    def roles() -> tuple[list[str], list[str]]:
        hosts = known()
        webs = sorted(name for name, h in hosts.items() if h["labels"].get("role") == "web")
        calm = sorted(name for name, h in hosts.items() if h["labels"].get("role") not in ("web", "canary"))
        return webs, calm

    wait_until(lambda: len(known()) > SIMULATED and all(roles()), 30, what="every host in /api/hosts")
    hosts = known()
    webs, calm = roles()
    wait_until(
        lambda: alerting.firing(tokens.viewer, "web-busy") == set(webs), 20, what="web-busy on every web host"
    )

    async with chromium() as browser:
        page = await logged_in_page(browser, alerting.gateway.url, tokens.operator)
        await page.wait_for_function("(n) => window.fleetdeckFleet.count() === n", arg=len(hosts))
        await strip_says(page, "warning", len(webs))
        assert await page.is_hidden("#alert-counts [data-severity=critical]")
        # Outlined: exactly the web hosts, in the warning colour, drawn on the canvas.
        outlines = await page.evaluate(
            "(names) => names.map((n) => window.fleetdeckFleet.outline(n))", sorted(hosts)
        )
        assert {n for n, o in zip(sorted(hosts), outlines, strict=True) if o} == set(webs)
        assert set(outlines) == {"warning", None}
        assert await page.evaluate(EDGE, webs[0]) == WARNING
        assert await page.evaluate(EDGE, calm[0]) not in (WARNING, CRITICAL, SILENCED)
        # The panel: one row per host (the first 25 by name), value in percent, the rule's summary.
        rows = await page.evaluate(ROWS, "web-busy")
        assert [r["host"] for r in rows] == webs[:25]
        assert all(
            r["value"].endswith("%") and r["summary"].startswith(r["host"] + " is busy at ") for r in rows
        )
        assert not any(r["silenced"] for r in rows)
        # Run on these hosts: the run panel's target names the rule.
        await page.click('.alert-rule[data-rule="web-busy"] button.run')
        assert await page.input_value("#exec-targets") == "@alert=web-busy"
        await page.locator("#exec-target-note", has_text="web-busy fires now").wait_for()
        await page.screenshot(path=str(artifacts / "alerts-firing.png"))

        # The canary's agent dies: an offline alert, critical, on that host alone.
        alerting.agents[CANARY].stop()
        await strip_says(page, "critical", 1)
        assert await page.evaluate("(n) => window.fleetdeckFleet.outline(n)", CANARY) == "critical"
        assert await page.evaluate(EDGE, CANARY) == CRITICAL
        gone = await page.evaluate(ROWS, "canary-gone")
        assert gone == [
            {"host": CANARY, "value": "offline", "summary": f"{CANARY} stopped reporting", "silenced": False}
        ]
        # The worst rule is listed first.
        rules = await page.evaluate(
            "() => [...document.querySelectorAll('.alert-rule')].map((g) => g.dataset.rule)"
        )
        assert rules == ["canary-gone", "web-busy"]
        await page.screenshot(path=str(artifacts / "alerts-offline.png"))

        # A viewer on a phone, already watching when the operator silences a rule.
        viewer = await logged_in_page(browser, alerting.gateway.url, tokens.viewer, viewport=PHONE)
        await strip_says(viewer, "warning", len(webs))

        # Silence web-busy from the panel: a comment is required, then every row is marked.
        rule = '.alert-rule[data-rule="web-busy"]'
        await page.click(f"{rule} button.silence")
        await page.click(f"{rule} .silence-form button[type=submit]")
        await page.locator(f"{rule} .silence-form .error", has_text="Comment").wait_for()
        await page.select_option(f"{rule} .silence-form select.for", "1h")
        await page.fill(f"{rule} .silence-form .comment", "load test on the web tier")
        await page.click(f"{rule} .silence-form button[type=submit]")
        await page.wait_for_selector(f"{rule} .silence-form", state="detached")
        await strip_says(page, "silenced", len(webs))
        assert await page.is_hidden("#alert-counts [data-severity=warning]")
        rows = await page.evaluate(ROWS, "web-busy")
        assert rows and all(r["silenced"] for r in rows)
        assert await page.evaluate("(n) => window.fleetdeckFleet.outline(n)", webs[0]) == "silenced"
        assert await page.evaluate(EDGE, webs[0]) == SILENCED
        silences = alerting.get("/api/alerts/silences", tokens.viewer)["silences"]
        assert [(s["rule"], s["comment"]) for s in silences] == [("web-busy", "load test on the web tier")]
        assert all(
            a["silenced"]
            for a in alerting.get("/api/alerts", tokens.viewer)["firing"]
            if a["rule"] == "web-busy"
        )
        await page.screenshot(path=str(artifacts / "alerts-silenced.png"))

        # The viewer's page sees the silence too (no frame says so: it asks every 30 s), and has
        # no way to silence.
        await strip_says(viewer, "silenced", len(webs), within=60)
        await strip_says(viewer, "critical", 1)
        await viewer.wait_for_selector('.alert-rule[data-rule="canary-gone"] button.run')
        rows = await viewer.evaluate(ROWS, "web-busy")
        assert rows and all(r["silenced"] and r["value"].endswith("%") for r in rows)
        assert await viewer.locator("button.silence").count() == 0
        assert await viewer.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        await viewer.screenshot(path=str(artifacts / "alerts-phone.png"), full_page=True)
