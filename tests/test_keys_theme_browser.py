"""The dashboard in a real headless Chromium: the light theme when the system asks for it (charts
included), the keyboard shortcuts and their `?` help, the host list's column headers, and the line
that says what `{host}` means in grouped output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from testbed.browser import PHONE, chromium, logged_in_page
from tests.support.stacks import ExecStack, Stack, Tokens

pytestmark = [pytest.mark.browser, pytest.mark.ssh]

TERMINAL_TEXT = """() => {
  const buffer = window.fleetdeckTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(true);
    else lines.push(line.translateToString(true));
  }
  return lines.join("\\n");
}"""
AXIS_COLOUR = (
    "(sel) => echarts.getInstanceByDom(document.querySelector(sel)).getOption().yAxis[0].axisLabel.color"
)
LEGEND = "{host} is each host's own name or address"
DARK_BG, LIGHT_BG = "rgb(15, 20, 25)", "rgb(255, 255, 255)"


async def style(page: Page, selector: str, prop: str) -> str:
    value: str = await page.eval_on_selector(selector, "(el, prop) => getComputedStyle(el)[prop]", prop)
    return value


async def open_chart(page: Page, host: str) -> str:
    await page.fill("#host-search", host)
    row = f'#host-rows .host-row[data-host="{host}"]'
    await page.wait_for_selector(f"{row}:not(.offline)")
    await page.click(f"{row} .name")
    card = f'.chart-card[data-host="{host}"]'
    await page.wait_for_selector(card)
    await page.wait_for_function("(sel) => Number(document.querySelector(sel).dataset.points) > 0", arg=card)
    return card


async def finished(page: Page, total: int) -> None:
    await page.wait_for_selector(f"#exec-progress:has-text('finished {total}/{total}')", timeout=60_000)


async def test_the_light_theme_follows_the_system_charts_and_host_list_included(
    stack: Stack, exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        await page.emulate_media(color_scheme="dark")  # headless Chromium says "light" unless told
        assert await style(page, "body", "backgroundColor") == DARK_BG
        card = await open_chart(page, "agent-a")
        await page.wait_for_function(f"(sel) => ({AXIS_COLOUR})(sel) === '#7d8b99'", arg="#fleet-chart")

        await page.emulate_media(color_scheme="light")
        assert await style(page, "body", "backgroundColor") == LIGHT_BG
        assert await style(page, "body", "color") == "rgb(31, 35, 40)"
        assert await style(page, "#host-rows", "borderTopColor") == "rgb(208, 215, 222)"
        # The charts are redrawn in the page's colours, not left dark.
        await page.wait_for_function(f"(sel) => ({AXIS_COLOUR})(sel) === '#59636e'", arg="#fleet-chart")
        await page.wait_for_function(f"(sel) => ({AXIS_COLOUR})(sel) === '#59636e'", arg=f"{card} .chart")

        # The host list has column headers with units, on the rows' own columns.
        await page.fill("#host-search", "")
        head = [t.strip() for t in await page.locator("#host-head span").all_text_contents() if t.strip()]
        assert head == ["Host", "CPU %", "Mem %", "Load 1m", "Labels"]
        for column in ("name", "cpu", "mem", "load"):
            header = await page.locator(f"#host-head .{column}").bounding_box()
            cell = await page.locator(f'#host-rows .host-row[data-host="agent-a"] .{column}').bounding_box()
            assert header is not None and cell is not None
            assert abs(header["x"] - cell["x"]) <= 1 and abs(header["width"] - cell["width"]) <= 1, column

        # Outputs that differ only by each host's address share a group, with one line saying so.
        await page.fill("#exec-targets", "127.0.0.2-4")
        await page.fill("#exec-command", 'echo "hello from $FLEET_HOST"')
        await page.click("#exec-run")
        await finished(page, 3)
        lines = (await page.evaluate(TERMINAL_TEXT)).splitlines()
        group = next(i for i, line in enumerate(lines) if line.strip() == "hello from {host}")
        assert lines[group - 1].startswith("127.0.0.[2-4] (3) ok")
        assert lines[group + 1].strip() == LEGEND
        assert sum(LEGEND in line for line in lines) == 1
        await page.screenshot(path=str(artifacts / "theme-light.png"), full_page=True)

        await page.emulate_media(color_scheme="dark")
        assert await style(page, "body", "backgroundColor") == DARK_BG
        await page.wait_for_function(f"(sel) => ({AXIS_COLOUR})(sel) === '#7d8b99'", arg="#fleet-chart")


async def test_keyboard_shortcuts_and_their_help(
    stack: Stack, exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    sent: list[dict[str, Any]] = []
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator, sent=sent)
        active = "() => document.activeElement && document.activeElement.id"

        # `?` shows every shortcut; Esc closes the help and gives the focus back.
        await page.keyboard.press("?")
        await page.wait_for_selector("#help:not([hidden])")
        keys = await page.locator("#help-keys dt").all_text_contents()
        assert keys == ["/", "Ctrl+Enter", "Esc", "?"]
        await page.screenshot(path=str(artifacts / "shortcuts-help.png"))
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#help", state="hidden")
        await page.click("#help-button")  # the same help, for whoever does not know about `?`
        await page.wait_for_selector("#help:not([hidden])")
        await page.click("#help-close")
        await page.wait_for_selector("#help", state="hidden")

        # `/` puts the cursor in the targets box; there it is a character like any other.
        await page.keyboard.press("/")
        assert await page.evaluate(active) == "exec-targets"
        await page.keyboard.type("127.0.0.5")
        await page.fill("#exec-command", "echo keys/$FLEET_HOST")
        # Ctrl+Enter runs, from the command box (or anywhere outside another form).
        await page.focus("#exec-command")
        await page.keyboard.press("Control+Enter")
        await finished(page, 1)
        text = await page.evaluate(TERMINAL_TEXT)
        assert "keys/127.0.0.5" in text
        assert [f["targets"] for f in sent if f.get("type") == "exec"] == ["127.0.0.5"]

        # Ctrl+Enter in the chat runs nothing.
        await page.fill("#chat-input", "not a command")
        await page.focus("#chat-input")
        await page.keyboard.press("Control+Enter")
        await page.keyboard.press("Escape")  # leaves the field, closes nothing
        assert await page.evaluate(active) != "chat-input"

        # Esc closes the chart opened last, then the full output per host.
        card = await open_chart(page, "agent-b")
        await page.click("#exec-details summary")
        await page.locator("#exec-details[open]").wait_for()
        await page.focus("#host-search")
        await page.keyboard.press("Escape")  # in a text field, Esc only leaves it
        assert await page.evaluate(active) != "host-search"
        assert await page.locator(card).count() == 1
        await page.keyboard.press("Escape")
        await page.wait_for_selector(card, state="detached")
        assert await page.locator("#exec-details[open]").count() == 1
        await page.keyboard.press("Escape")
        await page.locator("#exec-details:not([open])").wait_for()
        await page.screenshot(path=str(artifacts / "shortcuts-after.png"), full_page=True)
        assert [f["targets"] for f in sent if f.get("type") == "exec"] == ["127.0.0.5"]


async def test_on_a_phone_slash_opens_the_run_pane_at_the_targets_box(
    exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator, viewport=PHONE)
        await page.emulate_media(color_scheme="light")
        assert await page.get_attribute("body", "data-tab") == "fleet"
        assert not await page.is_visible("#exec-targets")
        await page.keyboard.press("/")
        assert await page.get_attribute("body", "data-tab") == "run"
        assert await page.evaluate("() => document.activeElement.id") == "exec-targets"
        assert await page.is_visible("#exec-targets")
        await page.screenshot(path=str(artifacts / "shortcuts-phone-light.png"))
