"""Benchmark: the dashboard in headless Chromium with 10,000 simulated hosts at 1 Hz, on compact fleet
frames (its default) and, in the same run, on JSON ones (`?fleet_format=json`).

What it measures and how: docs/benchmarks.md. Its summary: bench/fleet_browser.md.

    scripts/bench fleet_browser        # or: .venv/bin/python -m bench.fleet_browser
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

from playwright.async_api import CDPSession

from testbed.browser import DESKTOP, chromium

from .cli import parser
from .harness import Report, Result, listing, run
from .measure import Context, percentile
from .stack import Stack

REPORT = Report(
    name="fleet_browser",
    title="The dashboard at scale",
    options={"hosts": 10000, "duration": 20.0, "format": ("both", "compact", "json")},
    target={"fleet_drawn_s": 2, "long_task_share": 0.05, "raf_round_trip_p99_ms": 50, "heap_max_mb": 150},
    head=f"""{{hosts:,}} simulated hosts at 1 Hz, the dashboard in headless Chromium
    ({DESKTOP["width"]} x {DESKTOP["height"]} px) on {{fleet_format}} fleet frames; {{context}}.""",
    targets="""
login → whole fleet drawn | {fleet_drawn_s:.2f} s | < {target[fleet_drawn_s]} s | fleet_drawn_s
main thread in long tasks ({window_s:.0f} s window) | {long_task_share:.1%} | < {target[long_task_share]:.0%}
    | long_task_share
rAF round trip p50 / p99 (one a second) | {raf_round_trip_p50_ms:ms} / {raf_round_trip_p99_ms:ms}
    | < {target[raf_round_trip_p99_ms]} ms | raf_round_trip_p99_ms
JS heap (largest reading) | {heap_max_mb:.0f} MB | < {target[heap_max_mb]} MB | heap_max_mb
bytes received per second (WebSocket payload) | {ws_bytes_per_s:B:KiB}/s
""",
    also="""
hosts the overview reports drawn at the end | {drawn}
connection badge at the end | {connection}
rAF interval p50 / p99 / max (continuous loop)
    | {raf_interval_p50_ms:ms} / {raf_interval_p99_ms:ms} / {raf_interval_max_ms:ms}
bytes received per second by kind, KiB (`binary`: compact fleet frames; else a text frame's `type`)
    | {ws_kib_per_s_by_kind:counts}
rAF round trip max | {raf_round_trip_max_ms:ms}
main thread in long tasks from page load to fleet drawn | {long_task_share_until_drawn:.0%}
CPU of the rest of the machine (Chromium included) | {others_cpu_pct:.0f}%
""",
    machine=False,
)

# Runs in the dashboard's document before its own scripts.
INSTRUMENT = """
(() => {
  if (location.pathname !== "/") return;
  const b = (window.__bench = { target: %d, longtasks: [], frames: [], roundTrips: [], drawnAt: null,
    wsBytes: 0, wsMessages: 0, wsKinds: {} });
  // Every WebSocket message's payload counted (a string's length: the frames are ASCII JSON).
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const d = e.data;
        const size = typeof d === "string" ? d.length : d.byteLength ?? d.size ?? 0;
        // by kind: `binary` (compact fleet frames), else the first frame's type (a batch's too)
        const named = typeof d === "string" ? d.slice(0, 80).match(/"type":"([a-z_]+)"/) : null;
        const kind = typeof d !== "string" ? "binary" : named ? named[1] : "text";
        b.wsBytes += size;
        b.wsMessages += 1;
        b.wsKinds[kind] = (b.wsKinds[kind] || 0) + size;
      });
    }
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {
    b.noLongtasks = String(e);
  }
  const frame = (t) => { b.frames.push(t); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  setInterval(() => {
    const asked = performance.now();
    requestAnimationFrame(() => b.roundTrips.push([asked, performance.now() - asked]));
  }, 1000);
  const poll = setInterval(() => {
    const fleet = window.fleetdeckFleet;
    if (fleet && fleet.count() >= b.target) {
      b.drawnAt = Date.now();
      b.drawnPerf = performance.now();
      clearInterval(poll);
    }
  }, 20);
})();
"""

COUNTED = """() => [performance.now(), window.__bench.wsBytes, window.__bench.wsMessages,
  {...window.__bench.wsKinds}]"""
PAGE_FACTS = """() => ({
  drawn: window.fleetdeckFleet ? window.fleetdeckFleet.count() : null,
  connection: (document.getElementById("conn-state") || {}).dataset?.state ?? null,
})"""


def covered(tasks: list[list[float]], start: float, end: float) -> float:
    """Milliseconds of [start, end] covered by long tasks."""
    return sum(max(0.0, min(end, t + d) - max(start, t)) for t, d in tasks)


async def heap_mb(cdp: CDPSession) -> float:
    usage = await cdp.send("Runtime.getHeapUsage")
    return float(usage["usedSize"]) / 1e6


async def drive(base_url: str, token: str, args: argparse.Namespace, fleet_format: str) -> dict[str, Any]:
    """Log in as a person would, then watch the dashboard for --duration s once it has drawn the
    fleet; on JSON frames the page is opened again with `?fleet_format=json` after the login."""
    async with chromium() as browser:
        context = await browser.new_context(viewport=DESKTOP)
        await context.add_init_script(script=INSTRUMENT % args.hosts)
        page = await context.new_page()
        await page.goto(base_url + "/login")
        await page.fill("#token", token)
        clicked = time.time() * 1000
        await page.click("#login-button")
        await page.wait_for_url(base_url + "/")
        if fleet_format == "json":
            clicked = time.time() * 1000
            await page.goto(base_url + "/?fleet_format=json")
        await page.wait_for_function(
            "() => window.__bench && window.__bench.drawnAt !== null", timeout=args.draw_timeout * 1000
        )
        cdp = await context.new_cdp_session(page)
        await asyncio.sleep(args.settle)
        start, bytes0, messages0, kinds0 = await page.evaluate(COUNTED)
        heaps = []
        until = time.monotonic() + args.duration
        while (left := until - time.monotonic()) > 0:
            heaps.append(await heap_mb(cdp))
            await asyncio.sleep(min(2.0, left))
        end, bytes1, messages1, kinds1 = await page.evaluate(COUNTED)
        heaps.append(await heap_mb(cdp))
        bench = await page.evaluate("() => window.__bench")
        facts = await page.evaluate(PAGE_FACTS)
    frames = [t for t in bench["frames"] if start <= t <= end]
    intervals = [b - a for a, b in itertools.pairwise(frames)]
    trips = [d for t, d in bench["roundTrips"] if start <= t <= end]
    return {
        "fleet_format": fleet_format,
        "fleet_drawn_s": (bench["drawnAt"] - clicked) / 1000,
        "long_task_share": covered(bench["longtasks"], start, end) / (end - start),
        "long_task_share_until_drawn": covered(bench["longtasks"], 0.0, bench["drawnPerf"])
        / max(1.0, bench["drawnPerf"]),
        "longtask_observer": bench.get("noLongtasks") or "ok",
        "raf_round_trip_p50_ms": percentile(trips, 0.5),
        "raf_round_trip_p99_ms": percentile(trips, 0.99),
        "raf_round_trip_max_ms": max(trips, default=float("nan")),
        "raf_interval_p50_ms": percentile(intervals, 0.5),
        "raf_interval_p99_ms": percentile(intervals, 0.99),
        "raf_interval_max_ms": max(intervals, default=float("nan")),
        "heap_max_mb": max(heaps),
        "window_s": (end - start) / 1000,
        "ws_bytes_per_s": (bytes1 - bytes0) / ((end - start) / 1000),
        "ws_messages_per_s": (messages1 - messages0) / ((end - start) / 1000),
        "ws_kib_per_s_by_kind": {
            kind: round((size - kinds0.get(kind, 0)) / 1024 / ((end - start) / 1000), 1)
            for kind, size in sorted(kinds1.items())
            if size > kinds0.get(kind, 0)
        },
        **facts,  # drawn, connection
    }


FORMATS = {"both": ("compact", "json"), "compact": ("compact",), "json": ("json",)}


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One stack; the dashboard on each format in turn, each in a browser of its own."""
    with Stack(tmp, args) as stack:
        gateway = stack.start(pinned=False).gateways[0]
        time.sleep(3)
        runs = {}
        for fleet_format in FORMATS[args.format]:
            machine = stack.window()[0]
            started = time.monotonic()
            runs[fleet_format] = asyncio.run(drive(gateway.url, stack.token, args, fleet_format))
            # Chromium is not among "ours": the rest of the machine includes it.
            runs[fleet_format]["others_cpu_pct"] = machine.others() / (time.monotonic() - started) * 100
    return {"formats": runs, "others_cpu_pct": max(r["others_cpu_pct"] for r in runs.values())}


COMPARED = """
frames | fleet drawn | long tasks | rAF round trip p99 | JS heap | bytes received per second
    | messages per second | CPU of the rest of the machine
"""
COMPARED_ROW = """
{fleet_format} | {fleet_drawn_s:.2f} s | {long_task_share:.1%} | {raf_round_trip_p99_ms:ms}
    | {heap_max_mb:.0f} MB | {ws_bytes_per_s:B:KiB}/s | {ws_messages_per_s:.1f} | {others_cpu_pct:.0f}%
"""


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> tuple[str, str]:
    """The first format's summary, then every format side by side."""
    first = raw["formats"][next(iter(raw["formats"]))]
    compared = "Side by side in the same run (one stack, a browser for each):\n\n" + listing(
        COMPARED, COMPARED_ROW, raw["formats"].values()
    )
    return REPORT.summary(first, first, args, ctx, compared)


def main() -> None:
    helps = {"duration": "seconds observed once drawn", "format": "fleet frames, one after the other"}
    options = {**REPORT.options, "draw_timeout": 60.0}
    args = parser(__doc__, options, helps, settle=2).parse_args()  # --settle: from drawn to the window
    result = Result(REPORT.name, REPORT.title, "", {})
    run(args, measure, lambda raw, _: raw["formats"], render, result, drop=())


if __name__ == "__main__":
    main()
