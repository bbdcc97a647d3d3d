"""The dashboard in a real headless Chromium: log in, live charts of both agents, team chat, a host's
disk, network, uptime and file systems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetdeck_agent import sampler
from testbed.browser import chromium, logged_in_page
from tests.support.stacks import Stack, Tokens

pytestmark = pytest.mark.browser


async def test_login_live_charts_and_chat_between_two_users(
    stack: Stack, tokens: Tokens, artifacts: Path
) -> None:
    async with chromium() as browser:
        alice = await logged_in_page(browser, stack.gateway.url, tokens.operator)
        assert await alice.text_content("#whoami") == "alice (operator)"
        for host in ("agent-a", "agent-b"):
            # Found in the host list, online; pinned, its chart opens and stays open.
            await alice.fill("#host-search", host)
            row = f'#host-rows .host-row[data-host="{host}"]'
            await alice.wait_for_selector(f"{row}:not(.offline)")
            await alice.click(f"{row} .pin")
            card = f'.chart-card[data-host="{host}"]'
            await alice.wait_for_selector(card)
            # Filled from history on load, then moving: the point count keeps growing.
            more_than = "([sel, n]) => Number(document.querySelector(sel).dataset.points) > n"
            await alice.wait_for_function(more_than, arg=[card, 1])
            before = int(await alice.get_attribute(card, "data-points") or 0)
            await alice.wait_for_function(more_than, arg=[card, before], timeout=10000)
            canvas = await alice.query_selector(f"{card} canvas")
            assert canvas is not None
        await alice.fill("#host-search", "")
        bob = await logged_in_page(browser, stack.gateway.url, tokens.viewer)
        await alice.fill("#chat-input", "deploying <b>v2</b> now")
        await alice.click("#chat-form button")
        message = bob.locator("#chat-log li", has_text="deploying <b>v2</b> now")
        await message.wait_for()
        assert await message.locator(".from").text_content() == "alice"
        assert await bob.locator("#chat-log b").count() == 0  # shown as text, never as HTML
        await alice.locator("#chat-log li", has_text="deploying").wait_for()
        # Someone who opens the page later gets the recent messages, each once.
        carol = await logged_in_page(browser, stack.gateway.url, tokens.viewer)
        await carol.locator("#chat-log li", has_text="deploying <b>v2</b> now").wait_for()
        assert await carol.locator("#chat-log li", has_text="deploying <b>v2</b> now").count() == 1
        # Per-core detail on demand: the chart gains a series per core, named in a legend.
        card = '.chart-card[data-host="agent-a"]'
        chart = "echarts.getInstanceByDom(document.querySelector(sel + ' .chart'))"
        series = f"(sel) => {chart}.getOption().series.filter((s) => s.type === 'line').length"
        legend = f"(sel) => {chart}.getOption().legend.filter((l) => l.show !== false).flatMap((l) => l.data)"
        assert await alice.evaluate(series, card) == 1
        assert await alice.evaluate(legend, card) == []
        await alice.click(f"{card} button.cores")
        assert await alice.evaluate(series, card) > 1
        assert "cpu0" in await alice.evaluate(legend, card)
        await alice.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
        await bob.screenshot(path=str(artifacts / "dashboard-viewer.png"), full_page=True)
        assert (artifacts / "dashboard.png").stat().st_size > 10_000


async def test_bad_token_stays_on_login_with_a_message(stack: Stack) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(stack.gateway.url + "/login")
        await page.fill("#token", "fdk_wrong")
        await page.click("#login-button")
        await page.wait_for_selector("#login-error:has-text('unknown token')")
        assert page.url.endswith("/login")


async def test_login_url_with_token_in_fragment_logs_in(stack: Stack, tokens: Tokens) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{stack.gateway.url}/login#token={tokens.viewer}")
        await page.wait_for_url(stack.gateway.url + "/")
        await page.wait_for_selector('#conn-state[data-state="online"]')
        assert await page.text_content("#whoami") == "bob (viewer)"
        assert await page.is_disabled("#exec-run")
        # ...and says why, rather than leaving a grey button.
        await page.locator("#exec-why", has_text="viewer").wait_for()


async def test_a_login_url_pasted_into_an_open_login_tab_logs_in(stack: Stack, tokens: Tokens) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(stack.gateway.url + "/login")
        # Pasting a URL that differs only in its fragment does not reload the page: hashchange.
        await page.goto(f"{stack.gateway.url}/login#token=fdk_wrong")
        await page.wait_for_selector("#login-error:has-text('unknown token')")
        assert page.url == stack.gateway.url + "/login"  # the token is taken out of the address bar
        await page.goto(f"{stack.gateway.url}/login#token={tokens.operator}")
        await page.wait_for_url(stack.gateway.url + "/")
        await page.wait_for_selector('#conn-state[data-state="online"]')
        assert await page.text_content("#whoami") == "alice (operator)"


async def test_a_hosts_card_shows_disk_network_uptime_and_its_file_systems(
    stack: Stack, tokens: Tokens, artifacts: Path
) -> None:
    sampler.use_proc(None)
    sampler.take_sample("here", 1.0)
    here = sampler.mounts()  # the agents measure this machine
    async with chromium() as browser:
        page = await logged_in_page(browser, stack.gateway.url, tokens.viewer)
        await page.fill("#host-search", "agent-a")
        row = '#host-rows .host-row[data-host="agent-a"]'
        await page.wait_for_selector(f"{row}:not(.offline)")
        await page.click(f"{row} .pin")
        card = '.chart-card[data-host="agent-a"]'
        await page.wait_for_selector(f"{card} .machine .uptime")
        assert re.fullmatch(
            r"up (\d+ (s|min)|\d+ h \d+ min|\d+ d \d+ h)", await page.text_content(f"{card} .uptime") or ""
        )
        rates = await page.text_content(f"{card} .machine .net") or ""
        assert re.fullmatch(r"↓ [\d.]+ [KMGTP]?B/s ↑ [\d.]+ [KMGTP]?B/s", rates), rates
        if here:
            disk = await page.text_content(f"{card} .machine .disk") or ""
            assert re.fullmatch(r"disk \d+%", disk), disk
            await page.wait_for_function(
                "([sel, n]) => document.querySelectorAll(sel).length === n",
                arg=[f"{card} .mounts li", len(here)],
            )
            rows = page.locator(f"{card} .mounts li")
            assert await rows.nth(0).get_attribute("data-mount") == here[0].mount  # fullest first
            assert re.fullmatch(
                r"[\d.]+ [KMGTP]?B free", await rows.nth(0).locator(".mount-free").text_content() or ""
            )
        await page.screenshot(path=str(artifacts / "dashboard-host-machine.png"), full_page=True)
