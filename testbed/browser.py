"""Debian's Chromium, driven by Playwright (no browser download), with this machine's closed network."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Browser, Page, ViewportSize, WebSocket, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP: ViewportSize = {"width": 1400, "height": 1000}
PHONE: ViewportSize = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in_page(
    browser: Browser,
    base_url: str,
    token: str,
    viewport: ViewportSize | None = None,
    sent: list[dict[str, Any]] | None = None,
) -> Page:
    """A fresh browser context that logs in through the login page, as a person would.

    `sent`, if given, collects every frame the page sends on its WebSocket (parsed)."""
    context = await browser.new_context(viewport=viewport or DESKTOP)
    page = await context.new_page()
    if sent is not None:

        def record(ws: WebSocket) -> None:
            ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

        page.on("websocket", record)
    await page.goto(base_url + "/login")
    await page.fill("#token", token)
    await page.click("#login-button")
    await page.wait_for_url(base_url + "/")
    await page.wait_for_selector('#conn-state[data-state="online"]')
    # The panels that load ECharts and xterm.js are wired a moment after the connection is up.
    await page.wait_for_selector("html[data-ready]", state="attached")
    return page
