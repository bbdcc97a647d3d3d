"""The dashboard's terminal in a real headless Chromium against a real gateway, worker and OpenSSH
sshd: "Shell" on a host's card, typing, output, the window resized and `stty size` following, the
exit status, a viewer's disabled button, and the session's recording played back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from testbed.browser import chromium, logged_in_page
from testbed.procs import start_agent
from tests.support.shellhost import PROMPT, shell_host
from tests.support.stacks import ExecStack, Fleet, Tokens

pytestmark = [pytest.mark.browser, pytest.mark.ssh]

ADDRESS = "127.0.4.21"
NAME = ADDRESS  # names are held to the allowlist (127.0.0.0/8 here) as exec holds them
SHELL_TEXT = "() => window.fleetdeckShells ? window.fleetdeckShells.text() : ''"
PLAYER_TEXT = """() => {
  const term = window.fleetdeckPlayer && window.fleetdeckPlayer.term;
  if (!term) return "";
  const buffer = term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""


@pytest.fixture(scope="module")
def shellbox(
    tmp_path_factory: pytest.TempPathFactory, fleet: Fleet, exec_stack: ExecStack, logs: Path
) -> Iterator[str]:
    """A host on the fleet (an agent says its SSH address), with a real sshd there."""
    with shell_host(tmp_path_factory.mktemp("shell-browser-sshd"), ADDRESS, fleet):
        agent = start_agent(NAME, exec_stack.users.url("agent"), logs, FLEETDECK_AGENT_ADDRESS=ADDRESS)
        try:
            yield NAME
        finally:
            agent.stop()


async def open_card(page: Page, host: str) -> str:
    await page.fill("#host-search", host)
    row = f'#host-rows .host-row[data-host="{host}"]'
    await page.wait_for_selector(f"{row}:not(.offline)")
    await page.click(f"{row} .pin")
    card = f'.chart-card[data-host="{host}"]'
    await page.wait_for_selector(card)
    return card


async def shows(page: Page, pattern: str) -> re.Match[str]:
    """Wait until the shown shell's screen matches `pattern` (a regex), and return the last match."""
    await page.wait_for_function(
        "(pattern) => new RegExp(pattern, 'm').test(window.fleetdeckShells.text())",
        arg=pattern,
        timeout=20_000,
    )
    return list(re.finditer(pattern, await page.evaluate(SHELL_TEXT), re.MULTILINE))[-1]


async def stty_size(page: Page, marker: str) -> tuple[int, int]:
    await page.keyboard.type(f"echo {marker}-$(stty size | tr ' ' x)")
    await page.keyboard.press("Enter")
    found = await shows(page, rf"^{marker}-(\d+)x(\d+)")
    return int(found[1]), int(found[2])


async def test_a_shell_from_a_hosts_card_types_shows_output_and_follows_the_window(
    exec_stack: ExecStack, tokens: Tokens, shellbox: str, artifacts: Path
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        card = await open_card(page, shellbox)
        await page.click(f"{card} button.shell")
        await page.wait_for_selector('#shell-state[data-state="open"]', timeout=20_000)
        assert (await page.text_content("#shell-state") or "").startswith(f"Connected to {shellbox} (")
        await shows(page, re.escape(PROMPT))
        await page.click(".shell-screen:not([hidden])")
        await page.keyboard.type("echo hello-$((6 * 7)); tty")
        await page.keyboard.press("Enter")
        await shows(page, r"^hello-42\n/dev/pts/\d+")

        rows, cols = await stty_size(page, "wide")
        model = await page.evaluate(
            "() => [fleetdeckShells.model.active.cols, fleetdeckShells.model.active.rows]"
        )
        assert [cols, rows] == model and cols > 100, (cols, rows)
        await page.screenshot(path=str(artifacts / "terminal-shell.png"))

        await page.set_viewport_size({"width": 1000, "height": 700})
        await page.wait_for_function(f"() => fleetdeckShells.model.active.cols < {cols}")
        smaller = await stty_size(page, "narrow")
        assert smaller[1] < cols and smaller[0] <= rows, (smaller, (rows, cols))
        await page.screenshot(path=str(artifacts / "terminal-resized.png"))

        await page.keyboard.type("exit 3")
        await page.keyboard.press("Enter")
        await page.wait_for_selector('#shell-state[data-state="closed"]')
        assert re.search(r"\bstatus 3\b", await page.text_content("#shell-state") or "")

        # The session's recording, played back in the page.
        await page.click("#recordings summary")
        await page.locator("#rec-rows tr", has_text=shellbox).first.wait_for()
        await page.locator("#rec-rows tr", has_text=shellbox).first.locator("button.play").click()
        await page.select_option("#rec-speed", "16")
        await page.wait_for_function(f"() => ({PLAYER_TEXT})().includes('hello-42')", timeout=30_000)
        await page.locator("#rec-screen").scroll_into_view_if_needed()
        await page.screenshot(path=str(artifacts / "terminal-recording.png"))


async def test_a_viewer_sees_shell_disabled_with_the_reason(
    exec_stack: ExecStack, tokens: Tokens, shellbox: str
) -> None:
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.viewer)
        card = await open_card(page, shellbox)
        button = page.locator(f"{card} button.shell")
        assert await button.is_disabled()
        assert "viewer" in (await button.get_attribute("title") or "")
        await page.click("#recordings summary")
        await page.locator("#rec-why", has_text="operators").wait_for()


async def test_the_run_panes_terminal_fills_its_pane_and_widens_with_it(
    exec_stack: ExecStack, tokens: Tokens, artifacts: Path
) -> None:
    fills = """() => {
      const box = document.getElementById("terminal");
      const screen = box.querySelector(".xterm-screen");
      return [window.fleetdeckTerminal.cols, box.clientWidth, screen.getBoundingClientRect().width];
    }"""
    async with chromium() as browser:
        page = await logged_in_page(browser, exec_stack.gateway.url, tokens.operator)
        await page.wait_for_function("() => window.fleetdeckTerminal !== undefined")  # the run pane is built
        cols, width, used = await page.evaluate(fills)
        assert used >= width - 40, (
            cols,
            width,
            used,
        )  # all but the padding, the scroll bar, a part of a cell
        await page.click("#run-wide")
        await page.wait_for_function(f"() => window.fleetdeckTerminal.cols > {cols + 20}")
        wider, width, used = await page.evaluate(fills)
        assert used >= width - 40, (wider, width, used)
        await page.fill("#exec-targets", "127.0.0.2")
        await page.fill("#exec-command", "echo " + "a-long-line-of-output " * 4)
        await page.click("#exec-run")
        await page.wait_for_selector("#exec-progress:has-text('finished 1/1')")
        await page.screenshot(path=str(artifacts / "exec-wide.png"))
        await page.reload()  # the choice is kept
        await page.wait_for_function(
            f"() => window.fleetdeckTerminal && window.fleetdeckTerminal.cols > {cols + 20}"
        )
