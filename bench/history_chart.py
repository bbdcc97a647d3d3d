"""Benchmark: a host's 90-day chart drawn in Chromium after the click, against 24 h and 7 d.

90 days of one host's history go through the agent's code path (HistoryWriter, HistoryStore,
default tiers) on a simulated clock: a sample a minute until an hour ago, then one a second (the
rollups kept are the same). Then that agent, a gateway and the dashboard in headless Chromium: each
range button of the host's chart is timed in the page from the click to the frame after the chart
drew the answer of GET /api/hosts/{host}/history; the median of --clicks clicks each.

    scripts/bench history_chart     # or: .venv/bin/python -m bench.history_chart --clicks 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fleetdeck_common.broker import create_broker
from fleetdeck_common.history import DEFAULT_TIERS, HistoryStore, HistoryWriter, Record, parse_tiers
from testbed.browser import chromium, logged_in_page
from testbed.procs import start_agent

from . import harness
from .measure import Context, wait_for_quiet
from .stack import Stack, make_token, wait_for_hosts

NAME = "history_chart"
HOST = "bench-host"
RANGES = ("24 h", "7 d", "90 d")  # 1,440 points at 1 min, 10,080 at 1 min, 2,160 at 1 h
TARGET_MS = 500.0
CLICK = """async ([host, label]) => {
  const card = document.querySelector(`.chart-card[data-host="${host}"]`);
  const t0 = performance.now();
  card.querySelector(`.range-bar button[data-range="${label}"]`).click();
  await new Promise((done) => { const check = () => (card.dataset.range === label && !card.dataset.loading
    ? requestAnimationFrame(() => done()) : requestAnimationFrame(check)); check(); });
  const drawn = performance.now() - t0;
  const fetched = performance.getEntriesByType("resource").filter((e) => e.name.includes("/history?")).pop();
  const points = Number(card.dataset.points);
  card.querySelector(".range-bar button.live").click();
  return { drawn, fetch: fetched ? fetched.duration : null, points };
}"""


def sample(ts: float) -> Record:  # a daily cycle of CPU, a disk filling through each day
    day = (ts % 86400) / 86400
    total = 20 + 60 * abs(0.5 - day) + (ts % 7)
    return Record(total, total, 40.0, 1.5, 30 + (ts % 86400) / 8640, 2e5, 1e5)


async def fill(redis_url: str, now: float) -> int:
    """Write 90 days of HOST's history as an agent would have; the samples written."""
    tiers = parse_tiers(DEFAULT_TIERS)
    writer = HistoryWriter(tiers)
    written = 0
    async with create_broker(redis_url) as broker:
        store = HistoryStore(broker, tiers)
        ts = now - tiers[-1].retention
        while ts < now:
            if writer.add(HOST, ts, sample(ts)) or written % 60 == 0:  # due, or an hour held
                await store.write(writer.take(HOST, ts), now)  # expiry from the real clock
            written += 1
            ts += 60 if ts < now - 3600 else 1
        await store.write(writer.finish(HOST, now), now)
    return written


async def clicks(url: str, token: str, count: int) -> dict[str, list[dict[str, float]]]:
    async with chromium() as browser:
        page = await logged_in_page(browser, url, token)
        await page.fill("#host-search", HOST)
        await page.click(f'#host-rows .host-row[data-host="{HOST}"] .pin')
        await page.wait_for_selector(f'.chart-card[data-host="{HOST}"][data-marks]')
        out: dict[str, list[dict[str, float]]] = {label: [] for label in RANGES}
        for _ in range(count):
            for label in RANGES:
                out[label].append(await page.evaluate(CLICK, [HOST, label]))
        return out


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with Stack(workdir) as stack:
        redis = stack.redis()
        started = time.monotonic()
        written = asyncio.run(fill(redis.url, time.time()))
        fill_s = time.monotonic() - started
        token = make_token(tokens := workdir / "tokens.txt")
        stack.callback(start_agent(HOST, redis.url, workdir, 1.0).stop)
        gateway = stack.gateway(redis.url, tokens)
        wait_for_hosts(gateway, token, 1)
        timed = asyncio.run(clicks(gateway.url, token, args.clicks))
    return {"samples_written": written, "fill_s": fill_s, "clicks": timed}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Per range (`90d`, ...): median click → drawn, median API answer, points drawn."""
    out: dict[str, Any] = {}
    for label, runs in raw["clicks"].items():
        key = label.replace(" ", "")
        out[f"drawn_{key}_ms"] = statistics.median(r["drawn"] for r in runs)
        out[f"fetch_{key}_ms"] = statistics.median(r["fetch"] or float("nan") for r in runs)
        out[f"points_{key}"] = runs[-1]["points"]
    return out


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    rows = [
        (
            f"{label}: click → drawn",
            f"{{drawn_{k}_ms:ms}} ({{points_{k}:,}} points, API {{fetch_{k}_ms:ms}})",
            *((f"≤ {TARGET_MS:.0f} ms", f"drawn_{k}_ms") if k == "90d" else ("", "")),
        )
        for label, k in (("90 days at 1 h", "90d"), ("7 days at 1 min", "7d"), ("24 h at 1 min", "24h"))
    ]
    met = {"drawn_90d_ms": s["drawn_90d_ms"] <= TARGET_MS}
    return (
        f"One host's 90 days written through HistoryWriter and HistoryStore ({raw['samples_written']:,} "
        f"samples in {raw['fill_s']:.0f} s, default tiers), an agent and a gateway on loopback, the "
        f"dashboard in headless Chromium, median of {args.clicks} clicks each; {ctx.sentence()}.\n\n"
        + harness.goals(rows, {**s, "met": met})
        + f"\n\nReproduce: `scripts/bench {NAME}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=7, help="clicks per range")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait (up to 5 min) for a lower load")
    harness.output_options(parser)
    args = parser.parse_args()
    wait_for_quiet(args.max_load, 300)
    ctx = Context.now()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
        raw = measure(args, Path(tmp))
    ctx = ctx.finished()
    s = summarize(raw)
    data = {"context": ctx.__dict__, "args": harness.recorded_args(args), "summary": s, "raw": raw}
    harness.publish(
        args, harness.Result(NAME, "A host's history in the dashboard", render(s, raw, args, ctx), data)
    )


if __name__ == "__main__":
    main()
