"""The exec terminal in a real headless Chromium: lines per host, progress, grouped summary, resume."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page

from testbed.browser import PHONE, chromium, logged_in_page
from testbed.procs import start_gateway
from tests.support.stacks import ExecStack, Tokens

pytestmark = [pytest.mark.browser, pytest.mark.ssh]

TERMINAL_TEXT = """() => {
  const buffer = window.fleetdeckTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""
HOST_LINE = re.compile(r"^(127\.0\.0\.\d+)\s+(\w+)\s+exit", re.MULTILINE)


async def run(page: Page, targets: str, command: str) -> None:
    await page.fill("#exec-targets", targets)
    await page.fill("#exec-command", command)
    await page.click("#exec-run")


async def finished(page: Page, total: int, timeout: float = 60_000) -> None:
    await page.wait_for_selector(f"#exec-progress:has-text('finished {total}/{total}')", timeout=timeout)


async def test_terminal_shows_a_line_per_host_progress_and_grouped_summary(
    exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        await run(page, "127.0.0.2-21", 'echo "group-$(( ${FLEET_HOST##*.} % 3 ))"')
        await finished(page, 20)
        text = await page.evaluate(TERMINAL_TEXT)
        lines = HOST_LINE.findall(text)
        assert sorted(h for h, _s in lines) == sorted(f"127.0.0.{i}" for i in range(2, 22))
        assert {s for _h, s in lines} == {"ok"}
        assert "127.0.0.[3,6,9,12,15,18,21] (7) ok" in text
        assert "127.0.0.[2,5,8,11,14,17,20] (7) ok" in text
        assert "127.0.0.[4,7,10,13,16,19] (6) ok" in text
        assert "--- 20 hosts in" in text
        assert await page.text_content("#exec-progress") == "finished 20/20 — ok 20"
        assert await page.locator("#exec-outputs .host-output").count() == 20
        assert await page.get_attribute("#job-list li.current", "data-outcome") == "good"
        await page.screenshot(path=str(artifacts / "exec-terminal.png"), full_page=True)

        # Hosts that did not succeed can be run again with one click.
        await run(page, "127.0.0.2-4", '[ "$FLEET_HOST" = 127.0.0.3 ] && exit 4; echo fine')
        await finished(page, 3)
        assert await page.text_content("#exec-progress") == "finished 3/3 — ok 2, failed 1"
        await page.click("#exec-rerun")
        await page.wait_for_selector("#exec-progress:has-text('finished 1/1 — failed 1')")
        assert await page.input_value("#exec-targets") == "127.0.0.3"
        # Recent jobs are coloured by what happened on the hosts: a job where every host failed
        # is not a green "done".
        rerun = page.locator('#job-list li.current[data-state="done"]')
        await rerun.wait_for()
        assert await rerun.get_attribute("data-outcome") == "bad"
        assert await rerun.locator(".outcome").text_content() == "failed 1/1"
        partly = page.locator("#job-list li.job", has_text="echo fine")
        assert await partly.nth(1).get_attribute("data-outcome") == "partial"

        # A reload shows the job this tab followed; any recent job can be shown again.
        await page.reload()
        await page.wait_for_selector("#exec-progress:has-text('finished 1/1 — failed 1')")
        first_job = page.locator("#job-list li", has_text="group-").first
        await first_job.click()
        await finished(page, 20)
        assert await page.text_content("#exec-progress") == "finished 20/20 — ok 20"
        assert await page.locator("#job-list li.current", has_text="group-").count() == 1


async def test_hostile_output_cannot_break_the_page(exec_stack: ExecStack, tokens: Tokens) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        await run(
            page,
            "127.0.0.2",
            "printf '\\033[2J\\033[31mRED<img src=x onerror=\"window.pwned=1\">\\n\\033]0;title\\007'",
        )
        await finished(page, 1)
        text = await page.evaluate(TERMINAL_TEXT)
        assert "\\x1b[2J" in text and "<img src=x" in text  # shown, not obeyed
        assert "127.0.0.2" in text  # the screen was not cleared
        assert await page.locator("#exec-outputs img").count() == 0
        assert await page.evaluate("() => window.pwned === undefined")
        assert await page.title() == "fleetdeck"


async def test_reconnect_mid_job_shows_every_result_exactly_once(
    exec_stack: ExecStack, tokens: Tokens, logs: Path, artifacts: Path
) -> None:
    key = exec_stack.users.job_key
    gateway = start_gateway(
        exec_stack.users.url("gateway"),
        logs,
        tokens.file,
        name="gateway-restarts",
        FLEETDECK_JOB_KEY_FILE=key,
    )
    port = gateway.port
    try:
        async with chromium() as browser:
            page = await logged_in_page(browser, gateway.url, tokens.operator)
            await run(page, "127.0.0.2-21", 'sleep "$(( (${FLEET_HOST##*.} % 5) * 2 ))"; echo slept')
            await page.wait_for_selector("#exec-progress:has-text('running 4/20')")
            gateway.service.kill()  # SIGKILL: no goodbye to the page, no time to flush anything
            await page.wait_for_selector('#conn-state[data-state="reconnecting"]')
            gateway = start_gateway(
                exec_stack.users.url("gateway"),
                logs,
                tokens.file,
                name="gateway-restarts",
                port=port,
                FLEETDECK_JOB_KEY_FILE=key,
            )
            await page.wait_for_selector('#conn-state[data-state="online"]', timeout=30_000)
            await finished(page, 20)
            text = await page.evaluate(TERMINAL_TEXT)
            hosts = [h for h, _s in HOST_LINE.findall(text)]
            assert sorted(hosts) == sorted(f"127.0.0.{i}" for i in range(2, 22)), text
            assert await page.locator("#exec-outputs .host-output").count() == 20
            await page.screenshot(path=str(artifacts / "exec-after-reconnect.png"), full_page=True)
    finally:
        gateway.stop()


async def test_a_phone_runs_a_command_and_reads_the_results_without_scrolling_sideways(
    exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator, viewport=PHONE)
        await page.click("#tabs [data-tab=run]")
        await run(page, "127.0.0.2-6", "echo phone-$FLEET_HOST")
        await finished(page, 5)
        text = await page.evaluate(TERMINAL_TEXT)
        assert len(HOST_LINE.findall(text)) == 5
        terminal = await page.locator("#terminal").bounding_box()
        assert terminal is not None and terminal["width"] >= 340 and terminal["height"] >= 250
        job = page.locator("#job-list li.current", has_text="phone-")
        await job.wait_for()
        box = await job.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=str(artifacts / "exec-phone.png"), full_page=True)


async def test_a_rolling_job_shows_its_waves_and_stops_past_max_failures(
    exec_stack: ExecStack, tokens: Tokens, artifacts: Path, tmp_path: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        await page.fill("#exec-batch", "2")
        await page.fill("#exec-max-failures", "0")
        # Wave 2 waits on a file the test writes, so the page can be seen mid-job.
        gate = tmp_path / f"wave-{uuid.uuid4().hex}"
        await run(
            page,
            "127.0.0.2-7",
            f'[ "$FLEET_HOST" = 127.0.0.4 ] && while [ ! -e {gate} ]; do sleep 0.1; done; '
            '[ "$FLEET_HOST" = 127.0.0.5 ] && exit 3; echo fine',
        )
        await page.wait_for_selector("#exec-progress:has-text('wave 2 of 3')", timeout=30_000)
        await page.screenshot(path=str(artifacts / "exec-rolling-wave.png"), full_page=True)
        gate.touch()
        try:
            await finished(page, 6)
        finally:
            gate.unlink()
        assert await page.text_content("#exec-progress") == "finished 6/6 — ok 3, failed 1, cancelled 2"
        text = await page.evaluate(TERMINAL_TEXT)
        assert dict(HOST_LINE.findall(text)) == {
            "127.0.0.2": "ok",
            "127.0.0.3": "ok",
            "127.0.0.4": "ok",
            "127.0.0.5": "failed",
            "127.0.0.6": "cancelled",
            "127.0.0.7": "cancelled",
        }
        await page.click("#exec-rerun")  # "Re-run failed" as before, still in waves
        await page.wait_for_selector("#exec-progress:has-text('finished 3/3')", timeout=30_000)
        assert await page.input_value("#exec-targets") == "127.0.0.5-7"
