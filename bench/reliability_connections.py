"""Benchmark: 10,000 WebSocket connections held by one gateway process, pings on, every one following
`fleet` with 1,000 simulated hosts.

Starts a Redis, `fleetdeck-agent --simulate 1000`, one `fleetdeck-gateway` (WebSocket pings every
`--ping-interval` s, its FLEETDECK_WS_PING_INTERVAL) and client processes (bench/wsclients.py,
`--light`: all but the probe clients count frames without parsing them), all on 127.0.0.1.
Measures, over a window once every client that could connect has:

- connect success: clients that connected and got their first `fleet` frame, of those asked for;
- RSS per connection: (gateway RSS during the window - RSS with the fleet and no clients) /
  connections the gateway holds;
- gateway CPU: utime + stime over the window, % of one core;
- fleet-frame latency: sample -> client on the probe clients (as in fleet_gateway), and the
  tick -> client delay of every frame on every client; frames per client per second (1.00 when
  the gateway keeps up with its tick).

The open-files limit is raised to its hard limit for this process and the ones it starts;
whatever was reached is reported ("7,412 of 10,000 connected"), it never stops at a failure.
Writes bench/reliability_connections.md (raw figures in bench/results/), quoted in docs/reliability.md.

    scripts/bench reliability_connections            # 10,000 clients, 1,000 hosts, 60 s window
    scripts/bench reliability_connections --clients 200 --hosts 100 --duration 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from .harness import RELIABILITY, Result, common_options, measured, ms, record, table, verdict, write
from .measure import Context, CpuWindow, histogram, idle, quantile_ms
from .reliability_common import (
    add_counts,
    command_line,
    gather,
    gather_ready,
    log_problems,
    machine_rows,
    report,
)
from .stack import Stack
from .watch import Watch, fd_count, gateway_metrics

NAME = "reliability_connections"
TARGET_RSS_KIB = 20.0  # as for the gateway at 1,000 clients (docs/benchmarks.md)
TARGET_P99_S = 1.5
TARGET_FRAMES_PER_S = 0.99  # of the tick: the gateway keeps up
DEFAULTS = {"clients": 10000, "hosts": 1000, "duration": 60.0, "ping_interval": 20.0, "no_batch": False}


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, _, token, gateway, agent = stack.gateway_with_fleet(
            args.hosts, FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}"
        )
        assert redis.service is not None
        pid = gateway.service.pid
        time.sleep(args.settle)
        idle_cpu, rss_before = idle(pid, args.settle)
        fds_before = fd_count(pid)

        processes = args.processes or max(1, math.ceil(args.clients / 1250))
        probe_every = max(1, args.clients // max(1, args.probes))
        with Watch(pid, 1.0, gateway) as watch:
            connect_t0 = watch.now()
            spread = stack.spread(
                [gateway.ws_url],
                args.clients,
                processes,
                token=token,
                redis=redis.url,
                max_seconds=args.connect_timeout + args.duration + 600,
                mode="fleet",
                light=True,
                exact_match=True,
                batch=not args.no_batch,
                probe_every=probe_every,
                connect_concurrency=args.connect_concurrency,
                ready_timeout=args.connect_timeout,
            )
            ready = gather_ready(spread, args.connect_timeout + 120)
            connect_seconds = watch.now() - connect_t0
            time.sleep(args.settle)
            start = time.time() + 1.0
            end = start + args.duration
            for process, _, _ in spread:
                process.send({"cmd": "window", "start": start, "end": end, "grace": 3})
            time.sleep(max(0.0, start - time.time()))
            ours = [pid, agent.pid, redis.service.pid, *(p.pid for p, _, _ in spread)]
            cpu_window = CpuWindow(ours)
            metrics_start = gateway_metrics(gateway, timeout=30)
            w0 = watch.now()
            time.sleep(max(0.0, end - time.time()))
            cpu, machine = cpu_window.close()
            w1 = watch.now()
            metrics_end = gateway_metrics(gateway, timeout=30)
            results = gather(spread, "result", 120)
        window = watch.between(w0, w1)
        timeline = [
            (r.t - connect_t0, r.metrics.get("fleetdeck_gateway_clients", math.nan)) for r in watch.readings
        ]
        log = log_problems(gateway.service.log_path)
    return {
        "ready": ready,
        "results": [r for r in results if r is not None],
        "processes": processes,
        "probe_every": probe_every,
        "connect_seconds": connect_seconds,
        **machine,
        "gateway_cpu_pct": cpu[pid],
        "gateway_cpu_pct_without_clients": idle_cpu,
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        "rss_before_kib": rss_before,
        "rss_window_kib": int(statistics.median(r.rss_kib for r in window)) if window else rss_before,
        "rss_max_kib": max((r.rss_kib for r in watch.readings), default=rss_before),
        "fds_before": fds_before,
        "fds_max": max((r.fds for r in watch.readings), default=fds_before),
        "gateway_clients_start": metrics_start.get("fleetdeck_gateway_clients", math.nan),
        "gateway_clients_end": metrics_end.get("fleetdeck_gateway_clients", math.nan),
        "slow_disconnects": metrics_end.get("fleetdeck_gateway_slow_disconnects_total", 0.0)
        - metrics_start.get("fleetdeck_gateway_slow_disconnects_total", 0.0),
        "clients_timeline": timeline,
        "log": log,
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    bin_ms = results[0]["bin_ms"] if results else 0.1
    latency = histogram(r["latency_hist"] for r in results)
    delay = histogram(r["tick_delay_hist"] for r in results)
    connected = sum(r.get("ready", 0) for r in raw["ready"])
    failed = sum(r.get("failed", 0) for r in raw["ready"])
    frames = sum(r["frames"] for r in results)
    per_client = [n for r in results for n in r["frames_per_client"]]
    probe_frames = frames - sum(r.get("light_frames", 0) for r in results)
    held = raw["gateway_clients_start"]
    held = held if not math.isnan(held) else connected
    timeline = raw["clients_timeline"]
    reached_at = next((t for t, n in timeline if n >= connected > 0), math.nan)
    return {
        "clients_asked": args.clients,
        "clients_connected": connected,
        "clients_failed": failed,
        "clients_pending": max(0, args.clients - connected - failed),
        "failures": add_counts(r.get("failures") for r in raw["ready"]),
        "clients_closed_in_window": sum(r["closed"] for r in results),
        "ended": add_counts(r.get("ended") for r in results),
        "gateway_held_at_window_start": held,
        "gateway_held_at_window_end": raw["gateway_clients_end"],
        "seconds_to_all_connected": reached_at,
        "gateway_cpu_pct": raw["gateway_cpu_pct"],
        "rss_per_connection_kib": (raw["rss_window_kib"] - raw["rss_before_kib"]) / held
        if held
        else math.nan,
        "latency_p50_ms": quantile_ms(latency, 0.50, bin_ms),
        "latency_p99_ms": quantile_ms(latency, 0.99, bin_ms),
        "latency_max_ms": quantile_ms(latency, 1.0, bin_ms),
        "latency_entries": sum(latency.values()),
        "tick_delay_p50_ms": quantile_ms(delay, 0.50, bin_ms),
        "tick_delay_p99_ms": quantile_ms(delay, 0.99, bin_ms),
        "frames_per_client_per_s": frames / max(1, connected) / raw["window_s"],
        "clients_without_frames": sum(1 for n in per_client if n == 0) - (args.clients - connected),
        "frame_kib": sum(r["frame_bytes"] for r in results) / max(1, frames) / 1024,
        "hosts_per_frame": sum(r["entries"] for r in results) / max(1, probe_frames),
        "error_frames": add_counts(r.get("errors") for r in results),
        "bad_frames": sum(r["bad"] for r in results),
        "slow_disconnects": raw["slow_disconnects"],
    }


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    p99_s = s["latency_p99_ms"] / 1000
    all_in = s["clients_connected"] >= args.clients
    rows = [
        (
            "connected (first `fleet` frame received)",
            f"{s['clients_connected']:,} of {args.clients:,}",
            f"{args.clients:,}",
            verdict(all_in),
        ),
        (
            "held by the gateway at the window's start and end",
            f"{s['gateway_held_at_window_start']:,.0f} and {s['gateway_held_at_window_end']:,.0f}",
            f"{args.clients:,}",
            verdict(
                all(
                    s[k] >= args.clients
                    for k in ("gateway_held_at_window_start", "gateway_held_at_window_end")
                )
            ),
        ),
        (
            "RSS per connection",
            "-" if math.isnan(s["rss_per_connection_kib"]) else f"{s['rss_per_connection_kib']:.1f} KiB",
            f"< {TARGET_RSS_KIB:.0f} KiB",
            verdict(s["rss_per_connection_kib"] < TARGET_RSS_KIB),
        ),
        ("gateway CPU", f"{s['gateway_cpu_pct']:.0f}% of one core", "", ""),
        (
            "fleet frames per client per second",
            f"{s['frames_per_client_per_s']:.2f}",
            f">= {TARGET_FRAMES_PER_S}",
            verdict(s["frames_per_client_per_s"] >= TARGET_FRAMES_PER_S),
        ),
        ("sample → client, p50", ms(s["latency_p50_ms"]), "", ""),
        (
            "sample → client, p99",
            ms(s["latency_p99_ms"]),
            f"< {TARGET_P99_S} s",
            verdict(p99_s < TARGET_P99_S),
        ),
    ]
    head = (
        f"{s['clients_connected']:,} of {args.clients:,} WebSocket clients connected to one gateway process "
        f"(pings every {args.ping_interval:g} s), following `fleet` with {args.hosts:,} simulated hosts at "
        f"1 Hz; {raw['window_s']:.0f} s window; {ctx.sentence()}.\n\n"
    )
    details = table(
        ("also measured", "value"),
        [
            (
                "clients asked / connected / failed / still connecting at the timeout",
                f"{args.clients:,} / {s['clients_connected']:,} / {s['clients_failed']:,} / "
                f"{s['clients_pending']:,}",
            ),
            ("why connections failed", _counts(s["failures"])),
            (
                "time until every connected client had its first frame",
                f"{raw['connect_seconds']:.1f} s ({raw['processes']} client process"
                + ("es)" if raw["processes"] != 1 else ")"),
            ),
            (
                "connections ended in the window / closed as too slow (1013)",
                f"{s['clients_closed_in_window']:,} / {s['slow_disconnects']:,.0f}",
            ),
            ("how connections ended before the end (close code, from the start)", _counts(s["ended"])),
            ("clients that got no frame in the window", f"{max(0, s['clients_without_frames']):,}"),
            (
                "tick → client (frame `ts` to receipt, every client), p50 / p99",
                f"{ms(s['tick_delay_p50_ms'])} / {ms(s['tick_delay_p99_ms'])}",
            ),
            ("sample → client, max", ms(s["latency_max_ms"])),
            (
                f"host entries timed (probe clients: one in {raw['probe_every']:,})",
                f"{s['latency_entries']:,}",
            ),
            ("frame size / host entries per frame", f"{s['frame_kib']:.1f} KiB / {s['hosts_per_frame']:.0f}"),
            ("`error` frames received", _counts(s["error_frames"])),
            ("gateway CPU with the fleet and no clients", f"{raw['gateway_cpu_pct_without_clients']:.1f}%"),
            (
                "gateway RSS without clients / in the window / largest",
                f"{raw['rss_before_kib'] / 1024:.1f} MiB / {raw['rss_window_kib'] / 1024:.1f} MiB / "
                f"{raw['rss_max_kib'] / 1024:.1f} MiB",
            ),
            ("gateway open files without clients / largest", f"{raw['fds_before']:,} / {raw['fds_max']:,}"),
            (
                "ERROR lines / tracebacks in the gateway's log",
                f"{raw['log']['error']} / {raw['log']['traceback']}",
            ),
            (
                "CPU of the agent / Redis / client processes",
                f"{raw['agent_cpu_pct']:.0f}% / {raw['redis_cpu_pct']:.0f}% / {raw['clients_cpu_pct']:.0f}%",
            ),
            *machine_rows(raw, args),
        ],
    )
    return report(head, rows, details, reproduce=command_line(NAME, args, DEFAULTS))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value:,}" for key, value in sorted(counts.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=DEFAULTS["clients"])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"])
    parser.add_argument("--duration", type=float, default=DEFAULTS["duration"], help="seconds measured")
    parser.add_argument(
        "--ping-interval", type=float, default=DEFAULTS["ping_interval"], help="the gateway's WebSocket pings"
    )
    parser.add_argument("--processes", type=int, default=0, help="client processes (0: one per 1,250)")
    parser.add_argument("--probes", type=int, default=50, help="clients that time every host entry")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="handshakes at once per process")
    parser.add_argument(
        "--connect-timeout", type=float, default=300, help="seconds the clients have to connect"
    )
    parser.add_argument("--no-batch", action="store_true", help="one frame per message (not /ws?batch=1)")
    common_options(parser)
    args = parser.parse_args()
    raw, ctx = measured(args, lambda tmp: measure(args, tmp), needed_fds=args.clients + 200)
    s = summarize(raw, args)
    full = render(s, raw, args, ctx)
    result = Result(
        NAME,
        "10,000 connections on one gateway",
        full,
        record(ctx, args, s, raw, drop=("results",)),
        page=RELIABILITY,
    )
    write(result, args.out, docs=not args.no_docs)
    print(full)


if __name__ == "__main__":
    main()
