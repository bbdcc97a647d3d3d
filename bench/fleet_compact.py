"""Benchmark: the bytes of a `fleet` tick at 10,000 simulated hosts, compact frames against JSON.

One redis-server, `fleetdeck-agent --simulate N` (10,000 hosts at 1 Hz) and one gateway on
127.0.0.1; two WebSocket clients on that gateway in the same run, one following `fleet` in JSON,
the other with `fleet_format: "compact"`. Every message each receives is sized; ticks
are paired by the frame's `ts` (both are built at the same tick). The first two frames of each
(the full frame, then the tick that catches up) are reported apart. In process, ticks in which
every simulated host has a new sample (the issue's case) are built as the gateway builds them,
JSON `dump` against `Encoder.changes`: their bytes and CPU time.

    scripts/bench fleet_compact    # or: .venv/bin/python -m bench.fleet_compact
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from fleetdeck_agent.simulate import simulated_fleet, simulated_sample
from fleetdeck_common.fleet_compact import Decoder, Encoder
from fleetdeck_common.messages import Fleet, FleetHost, dump
from testbed.procs import wait_until

from . import harness
from .measure import Context, CpuWindow
from .stack import Stack, make_token

NAME = "fleet_compact"
TITLE = "Compact fleet frames: tick bytes at 10,000 hosts"
DEFAULTS = {"hosts": 10000, "seconds": 20.0, "ticks": 10}
TARGET_KB = 60  # issue 24: a compact tick at 10,000 hosts


async def follow(url: str, token: str, fleet_format: str, seconds: float) -> list[dict[str, Any]]:
    """Each `fleet` message one client gets over `seconds`: its size, its ts and host entries."""
    decoder = Decoder()
    got: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url, additional_headers=headers, max_size=64 * 1024 * 1024) as ws:
        subscribe = {"type": "subscribe", "topics": ["fleet"], "fleet_format": fleet_format}
        await ws.send(json.dumps(subscribe))
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            frame = decoder.feed(raw) if isinstance(raw, bytes) else json.loads(raw)
            if frame.get("type") == "fleet":
                size = len(raw if isinstance(raw, bytes) else raw.encode())
                got.append(
                    {"bytes": size, "ts": frame["ts"], "hosts": len(frame["hosts"]), "full": frame["full"]}
                )
    return got


def simulated_ticks(hosts: int, ticks: int) -> dict[str, list[float]]:
    """Ticks in which every one of `hosts` simulated hosts has a new sample (the issue's case),
    built in process as the gateway builds them: each frame's bytes and CPU milliseconds, JSON
    and compact."""
    fleet, rng = simulated_fleet(hosts), random.Random(1)
    encoder = Encoder()

    def entries(now: float) -> list[FleetHost]:
        samples = (simulated_sample(h, now, 1.0, rng) for h in fleet)
        return [
            FleetHost.model_construct(
                host=s.host,
                online=True,
                total=s.total,
                mem=s.mem,
                load1=s.load[0],
                labels=h.labels,
                disk=s.disk,
            )
            for h, s in zip(fleet, samples, strict=True)
        ]

    first = entries(1.8e9)
    encoder.full(1.8e9, first)
    encoder.resync(first)
    out: dict[str, list[float]] = {"json_bytes": [], "compact_bytes": [], "json_ms": [], "compact_ms": []}
    for tick in range(1, ticks + 1):
        now = 1.8e9 + tick
        listed = entries(now)
        started = time.process_time()
        plain = dump(Fleet.model_construct(ts=now, full=False, hosts=listed))
        out["json_ms"].append((time.process_time() - started) * 1000)
        started = time.process_time()
        compact = encoder.changes(now, listed, []) or b""
        out["compact_ms"].append((time.process_time() - started) * 1000)
        out["json_bytes"].append(len(plain.encode()))
        out["compact_bytes"].append(len(compact))
    return out


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis = stack.redis()
        assert redis.service is not None
        token = make_token(tmp / "tokens.txt")
        gateway = stack.gateway(redis.url, tmp / "tokens.txt")
        agent = stack.simulated_fleet(redis.url, args.hosts)
        # Known, not online: an agent short of CPU on a busy machine leaves some behind a while.
        listed = f"{gateway.url}/api/hosts"
        headers = {"Authorization": f"Bearer {token}"}
        wait_until(
            lambda: len(httpx.get(listed, headers=headers, timeout=10).json()["hosts"]) >= args.hosts,
            300,
            interval=1,
            what=f"{args.hosts} hosts known",
        )
        time.sleep(args.settle)
        pids = [os.getpid(), redis.service.pid, agent.pid, gateway.service.pid]
        window = CpuWindow(pids)

        async def both() -> list[list[dict[str, Any]]]:
            return await asyncio.gather(
                *(follow(gateway.ws_url, token, f, args.seconds) for f in ("json", "compact"))
            )

        plain, compact = asyncio.run(both())
        seconds = time.monotonic() - window.t0
        others = window.others() / seconds * 100
    return {
        "json": plain,
        "compact": compact,
        "others_cpu_pct": others,
        "simulated": simulated_ticks(args.hosts, args.ticks),
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    ticks = {side: {m["ts"]: m for m in raw[side][2:]} for side in ("json", "compact")}
    paired = sorted(set(ticks["json"]) & set(ticks["compact"]))
    sim = raw["simulated"]
    s: dict[str, Any] = {"ticks": len(paired), "simulated_ticks": len(sim["compact_bytes"])}
    for side in ("json", "compact"):
        sizes = [ticks[side][ts]["bytes"] for ts in paired] or [0]
        s[side] = {
            "sim_median_kb": statistics.median(sim[f"{side}_bytes"]) / 1000,
            "sim_max_kb": max(sim[f"{side}_bytes"]) / 1000,
            "sim_ms": statistics.median(sim[f"{side}_ms"]),
            "median_kb": statistics.median(sizes) / 1000,
            "max_kb": max(sizes) / 1000,
            "hosts": statistics.median([ticks[side][ts]["hosts"] for ts in paired] or [0]),
            "full_kb": raw[side][0]["bytes"] / 1000 if raw[side] else 0.0,
            "catch_up_kb": raw[side][1]["bytes"] / 1000 if len(raw[side]) > 1 else 0.0,
        }
    s["ratio"] = s["json"]["sim_median_kb"] / max(s["compact"]["sim_median_kb"], 1e-9)
    s["met"] = 0 < s["compact"]["sim_max_kb"] <= TARGET_KB
    return s


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    j, c = s["json"], s["compact"]
    changed = [f"--{k} {getattr(args, k):g}" for k, d in DEFAULTS.items() if getattr(args, k) != d]
    targets = harness.table(
        ("", "measured", "target", ""),
        [
            [
                f"compact tick, {args.hosts:,} hosts all sampled, largest of {s['simulated_ticks']}",
                f"{c['sim_max_kb']:.1f} KB (JSON: {j['sim_max_kb']:,.0f} KB)",
                f"≤ {TARGET_KB} KB",
                harness.verdict(s["met"]),
            ]
        ],
    )
    rows = [
        [
            "tick, every host sampled (in process), median / largest",
            f"{j['sim_median_kb']:,.1f} / {j['sim_max_kb']:,.1f} KB",
            f"{c['sim_median_kb']:,.1f} / {c['sim_max_kb']:,.1f} KB",
        ],
        ["CPU to build that tick, median", f"{j['sim_ms']:.0f} ms", f"{c['sim_ms']:.0f} ms"],
        [
            f"tick through the gateway, median / largest of {s['ticks']}",
            f"{j['median_kb']:,.1f} / {j['max_kb']:,.1f} KB",
            f"{c['median_kb']:,.1f} / {c['max_kb']:,.1f} KB",
        ],
        ["host entries in a gateway tick, median", f"{j['hosts']:,.0f}", f"{c['hosts']:,.0f}"],
        ["full frame (on subscribing)", f"{j['full_kb']:,.1f} KB", f"{c['full_kb']:,.1f} KB"],
        ["the tick after it (catching up)", f"{j['catch_up_kb']:,.1f} KB", f"{c['catch_up_kb']:,.1f} KB"],
    ]
    return (
        f"Two ways, same run. In process: {s['simulated_ticks']} ticks in which every one of "
        f"{args.hosts:,} simulated hosts has a new sample (the issue's case), each built as the gateway "
        "builds it, JSON and compact (CPU time, /proc). Through a gateway: `fleetdeck-agent --simulate "
        f"{args.hosts:,}` (1 Hz) into one redis-server, one gateway, and two WebSocket clients on it "
        f"for {args.seconds:g} s, one following `fleet` in JSON and one in compact frames; ticks paired "
        "by their `ts` (an agent short of CPU on a busy machine samples fewer hosts a second, so these "
        "ticks hold fewer hosts). A compact tick leaves out the hosts whose values, rounded to 0.1, did "
        f"not change. {ctx.sentence()}.\n\n{targets}\n\n"
        f"{harness.table(('', 'JSON', 'compact'), rows)}\n\n"
        f"Compact ticks are {s['ratio']:.0f} times smaller than JSON ones (medians, every host sampled). "
        f"The rest of the machine used {raw['others_cpu_pct']:.0f}% of a core during the gateway "
        "window; tick bytes do not depend on it.\n\n"
        f"Reproduce: `{' '.join(['scripts/bench', NAME, *changed])}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or NAME).splitlines()[0])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"], help="simulated hosts, one agent")
    parser.add_argument("--seconds", type=float, default=DEFAULTS["seconds"], help="the clients' window")
    parser.add_argument("--ticks", type=int, default=DEFAULTS["ticks"], help="ticks built in process")
    harness.common_options(parser, settle=5)
    args = parser.parse_args()
    harness.run(args, measure, summarize, render, harness.Result(NAME, TITLE, "", {}))


if __name__ == "__main__":
    main()
