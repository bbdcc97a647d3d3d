"""Benchmark: a soak. 5,000 clients connecting, following `fleet` and leaving again, with 1,000
simulated hosts, for 10 minutes: does the gateway's memory or its open files grow, and does it log
errors?

Starts a Redis, `fleetdeck-agent --simulate 1000`, one `fleetdeck-gateway` and client processes
(bench/wsclients.py `--churn-lifetime`): each client connects, subscribes to `fleet`, follows for
0.5 to 1.5 times `--lifetime` seconds (the first time 0 to 1.5 times, so they do not leave
together), leaves (half by a closing handshake, half by dropping the TCP connection), waits a
second and connects again, for `--duration` seconds. With `--cpu-hosts K` each session also
opens K hosts' charts (`cpu` narrowed to them, with their history), as the dashboard does.

Sampled every `--sample-every` s from the start to after the clients have gone: the gateway's RSS
(/proc/PID/status), its open file descriptors (/proc/PID/fd), its CPU, and the clients it holds
(`fleetdeck_gateway_clients`). Growth is the mean of the last `--compare` seconds of the run
against the mean of the first `--compare` seconds after `--warmup`; target under 10% for RSS and
for open files. The gateway's log is searched for ERROR/CRITICAL lines and tracebacks (target 0).
Written: bench/reliability_soak.md and .svg (the plot; raw figures in bench/results/), quoted in
docs/reliability.md.

    scripts/bench reliability_soak                   # 5,000 clients, 1,000 hosts, 600 s
    scripts/bench reliability_soak --clients 300 --hosts 100 --duration 60
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .chart import Panel, Series, svg_chart
from .harness import RELIABILITY, ROOT, Result, common_options, measured, ms, record, table, verdict, write
from .measure import Context, CpuWindow, histogram, quantile_ms, rss_kib
from .reliability_common import (
    add_counts,
    command_line,
    gather,
    gather_ready,
    log_problems,
    machine_rows,
)
from .stack import Stack
from .watch import Reading, Watch, fd_count, mean, sockets_of

NAME = "reliability_soak"
TARGET_GROWTH = 0.10
DEFAULTS = {
    "clients": 5000,
    "hosts": 1000,
    "duration": 600.0,
    "lifetime": 60.0,
    "cpu_hosts": 0,
    "warmup": 60.0,
    "compare": 60.0,
    "no_batch": False,
}
CLIENTS = "fleetdeck_gateway_clients"


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, _, token, gateway, agent = stack.gateway_with_fleet(args.hosts)
        assert redis.service is not None
        pid = gateway.service.pid
        with Watch(pid, args.sample_every, gateway) as watch:
            time.sleep(args.settle)
            before = watch.between(0, watch.now())
            sockets_before = sockets_of(pid, redis.port, gateway.port)
            processes = args.processes or max(1, math.ceil(args.clients / 1000))
            spread = stack.spread(
                [gateway.ws_url],
                args.clients,
                processes,
                token=token,
                redis=redis.url,
                max_seconds=args.duration + 1200,
                mode="fleet",
                light=True,
                exact_match=True,
                batch=not args.no_batch,
                probe_every=max(1, args.clients // max(1, args.probes)),
                churn_lifetime=f"{args.lifetime:g}",
                cpu_hosts=args.cpu_hosts,
                ready_timeout=300,
            )
            started = watch.now()
            start = time.time()
            end = start + args.duration
            for process, _, _ in spread:
                process.send({"cmd": "window", "start": start, "end": end, "grace": 2})
            ready = gather_ready(spread, 420)
            ours = [pid, agent.pid, redis.service.pid, *(p.pid for p, _, _ in spread)]
            cpu_window = CpuWindow(ours)
            while time.time() < end:
                time.sleep(min(30.0, max(0.0, end - time.time())))
                print(
                    f"  {watch.now() - started:5.0f} s: RSS {rss_kib(pid) / 1024:.1f} MiB, "
                    f"{fd_count(pid)} open files",
                    flush=True,
                )
            cpu, machine = cpu_window.close()
            results = [r for r in gather(spread, "result", 120) if r is not None]
            finished = watch.now()
            for process, _, _ in spread:
                process.stop()
            time.sleep(args.cooldown)
            after = watch.between(watch.now() - min(5.0, args.cooldown), watch.now())
            sockets_after = sockets_of(pid, redis.port, gateway.port)
        log = log_problems(gateway.service.log_path)
    return {
        "ready": ready,
        "results": results,
        "processes": processes,
        "started_at": started,
        "finished_at": finished,
        "readings": [
            {
                "t": round(r.t - started, 2),
                "rss_kib": r.rss_kib,
                "fds": r.fds,
                "cpu_s": r.cpu_s,
                "clients": r.metrics.get(CLIENTS),
            }
            for r in watch.readings
        ],
        "before": _means(before),
        "after": _means(after),
        "sockets_before": sockets_before,
        "sockets_after": sockets_after,
        "gateway_cpu_pct": cpu[pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "clients_cpu_pct": sum(cpu[p.pid] for p, _, _ in spread),
        **machine,
        "log": log,
    }


def _means(readings: list[Reading]) -> dict[str, float]:
    return {
        "rss_kib": mean(r.rss_kib for r in readings),
        "fds": mean(r.fds for r in readings),
        "clients": mean(r.metrics[CLIENTS] for r in readings if CLIENTS in r.metrics),
    }


def phases(args: argparse.Namespace) -> tuple[float, float, float]:
    """The warm-up's end and the comparison span, shortened to fit a short run."""
    warmup = min(args.warmup, args.duration / 4)
    compare = min(args.compare, (args.duration - warmup) / 3)
    return warmup, compare, args.duration


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    results = raw["results"]
    readings = raw["readings"]
    warmup, compare, duration = phases(args)
    early = [r for r in readings if warmup <= r["t"] <= warmup + compare]
    late = [r for r in readings if duration - compare <= r["t"] <= duration]

    def growth(key: str) -> tuple[float, float, float]:
        first, last = mean(r[key] for r in early), mean(r[key] for r in late)
        return first, last, (last - first) / first if first else math.nan

    rss_first, rss_last, rss_growth = growth("rss_kib")
    fds_first, fds_last, fds_growth = growth("fds")
    bin_ms = results[0]["bin_ms"] if results else 0.1
    handshake = histogram(r["handshake_hist"] for r in results)
    first_frame = histogram(r["first_frame_hist"] for r in results)
    latency = histogram(r["latency_hist"] for r in results)
    during = [r for r in readings if 0 <= r["t"] <= duration]
    held = [r["clients"] for r in during if r["clients"] is not None]
    return {
        "clients": args.clients,
        "first_connected": sum(r.get("ready", 0) for r in raw["ready"]),
        "first_failed": sum(r.get("failed", 0) for r in raw["ready"]),
        "connects": sum(r["connects"] for r in results),
        "connect_failed": add_counts(r["connect_failed"] for r in results),
        "slow_handshakes": sum(r["slow_handshakes"] for r in results),
        "handshake_p50_ms": quantile_ms(handshake, 0.5, bin_ms),
        "handshake_p99_ms": quantile_ms(handshake, 0.99, bin_ms),
        "handshake_max_ms": quantile_ms(handshake, 1.0, bin_ms),
        "first_frame_p99_ms": quantile_ms(first_frame, 0.99, bin_ms),
        "latency_p99_ms": quantile_ms(latency, 0.99, bin_ms),
        "closed_clean": sum(r["closed_clean"] for r in results),
        "closed_abort": sum(r["closed_abort"] for r in results),
        "server_closed": add_counts(r["server_closed"] for r in results),
        "error_frames": add_counts(r["errors"] for r in results),
        "held_mean": mean(held),
        "held_max": max(held, default=math.nan),
        "warmup_s": warmup,
        "compare_s": compare,
        "rss_first_kib": rss_first,
        "rss_last_kib": rss_last,
        "rss_growth": rss_growth,
        "fds_first": fds_first,
        "fds_last": fds_last,
        "fds_growth": fds_growth,
        "log_errors": raw["log"]["error"],
        "log_tracebacks": raw["log"]["traceback"],
        "log_warnings": raw["log"]["warning"],
    }


def plot(raw: dict[str, Any], s: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    points = [r for r in raw["readings"] if r["t"] >= -min(30.0, args.duration / 10)]
    t_end = args.duration
    return svg_chart(
        f"Soak: {args.clients:,} churning clients, {args.hosts:,} hosts, one gateway ({ctx.date})",
        [
            Panel(
                "RSS (MiB)",
                [Series("gateway RSS", "#1f5fbf", [(r["t"], r["rss_kib"] / 1024) for r in points])],
            ),
            Panel("open files", [Series("gateway fds", "#c0392b", [(r["t"], r["fds"]) for r in points])]),
            Panel(
                "clients held",
                [
                    Series(
                        "clients",
                        "#2e8b57",
                        [(r["t"], r["clients"]) for r in points if r["clients"] is not None],
                    )
                ],
            ),
        ],
        "seconds since the clients started (before 0: the gateway with the fleet only)",
        spans=[
            (s["warmup_s"], s["warmup_s"] + s["compare_s"], "first"),
            (t_end - s["compare_s"], t_end, "last"),
        ],
        marks=[(s["warmup_s"], "warm-up ends"), (t_end, "clients leave")],
    )


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context, image: str) -> str:
    errors = s["log_errors"] + s["log_tracebacks"]
    rows = [
        (
            "gateway RSS: first → last span after warm-up",
            f"{s['rss_first_kib'] / 1024:.1f} → {s['rss_last_kib'] / 1024:.1f} MiB ({s['rss_growth']:+.1%})",
            f"< +{TARGET_GROWTH:.0%}",
            verdict(s["rss_growth"] < TARGET_GROWTH),
        ),
        (
            "gateway open files: first → last span after warm-up",
            f"{s['fds_first']:,.0f} → {s['fds_last']:,.0f} ({s['fds_growth']:+.1%})",
            f"< +{TARGET_GROWTH:.0%}",
            verdict(s["fds_growth"] < TARGET_GROWTH),
        ),
        (
            "ERROR lines and tracebacks in the gateway's log",
            f"{s['log_errors']} + {s['log_tracebacks']}",
            "0",
            verdict(errors == 0),
        ),
    ]
    head = (
        f"{args.clients:,} clients connecting, following `fleet` for about {args.lifetime:g} s and leaving, "
        f"over and over, with {args.hosts:,} simulated hosts and one gateway, for {args.duration:g} s; "
        f"spans of {s['compare_s']:g} s compared, the first after a {s['warmup_s']:g} s warm-up; "
        f"{ctx.sentence()}.\n\n"
    )
    failed = s["connect_failed"]
    details = table(
        ("also measured", "value"),
        [
            (
                "connects / failed / handshakes over 30 s",
                f"{s['connects']:,} / {sum(failed.values()):,} / {s['slow_handshakes']:,}",
            ),
            ("why connects failed", ", ".join(f"{k}: {v:,}" for k, v in sorted(failed.items())) or "none"),
            (
                "handshake p50 / p99 / max",
                f"{ms(s['handshake_p50_ms'])} / {ms(s['handshake_p99_ms'])} / {ms(s['handshake_max_ms'])}",
            ),
            ("handshake → first `fleet` frame, p99", ms(s["first_frame_p99_ms"])),
            ("sample → client p99 (probe clients)", ms(s["latency_p99_ms"])),
            (
                "sessions left cleanly / by dropping the connection / ended by the gateway",
                f"{s['closed_clean']:,} / {s['closed_abort']:,} / {sum(s['server_closed'].values()):,}"
                + (
                    f" ({', '.join(f'{k}: {v}' for k, v in s['server_closed'].items())})"
                    if s["server_closed"]
                    else ""
                ),
            ),
            (
                "`error` frames received",
                ", ".join(f"{k}: {v:,}" for k, v in s["error_frames"].items()) or "none",
            ),
            ("clients held by the gateway, mean / most", f"{s['held_mean']:,.0f} / {s['held_max']:,.0f}"),
            (
                "gateway RSS / open files with the fleet before the clients / after they left",
                f"{raw['before']['rss_kib'] / 1024:.1f} MiB, {raw['before']['fds']:.0f} / "
                f"{raw['after']['rss_kib'] / 1024:.1f} MiB, {raw['after']['fds']:.0f}",
            ),
            (
                "gateway's TCP sockets to Redis / of clients / other, before the clients / after",
                " / ".join(str(raw["sockets_before"][k]) for k in ("redis", "clients", "other"))
                + " before, "
                + " / ".join(str(raw["sockets_after"][k]) for k in ("redis", "clients", "other"))
                + " after",
            ),
            ("WARNING lines in the gateway's log", f"{s['log_warnings']:,}"),
            (
                "CPU of the gateway / agent / Redis / client processes",
                " / ".join(
                    f"{raw[key]:.0f}%"
                    for key in ("gateway_cpu_pct", "agent_cpu_pct", "redis_cpu_pct", "clients_cpu_pct")
                ),
            ),
            *machine_rows(raw, args),
        ],
    )
    examples = raw["log"]["examples"]
    shown = [f"    {line}" for kind in ("error", "traceback") for line in examples[kind]]
    log_text = (
        ("\n\nFirst ERROR lines and tracebacks of the gateway's log:\n\n" + "\n".join(shown)) if shown else ""
    )
    picture = f"\n\n![RSS, open files and clients of the gateway over the soak]({image})" if image else ""
    return (
        head
        + table(("", "measured", "target", ""), rows)
        + picture
        + "\n\n"
        + details
        + log_text
        + f"\n\nReproduce: `{command_line(NAME, args, DEFAULTS)}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=DEFAULTS["clients"])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"])
    parser.add_argument("--duration", type=float, default=DEFAULTS["duration"], help="seconds of churn")
    parser.add_argument(
        "--lifetime", type=float, default=DEFAULTS["lifetime"], help="mean seconds a client stays connected"
    )
    parser.add_argument("--cpu-hosts", type=int, default=0, help="hosts' charts each session opens")
    parser.add_argument(
        "--warmup", type=float, default=DEFAULTS["warmup"], help="seconds before the first span"
    )
    parser.add_argument("--compare", type=float, default=DEFAULTS["compare"], help="seconds of each span")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--cooldown", type=float, default=15.0, help="seconds watched after the clients left")
    parser.add_argument("--processes", type=int, default=0, help="client processes (0: one per 1,000)")
    parser.add_argument("--probes", type=int, default=50, help="clients that time every host entry")
    parser.add_argument("--no-batch", action="store_true", help="one frame per message (not /ws?batch=1)")
    common_options(parser)
    args = parser.parse_args()
    raw, ctx = measured(args, lambda tmp: measure(args, tmp), needed_fds=args.clients + 200)
    s = summarize(raw, args)
    in_bench = args.out.resolve() == (ROOT / "bench").resolve()
    full = render(s, raw, args, ctx, f"{NAME}.svg")
    result = Result(
        NAME,
        "Soak",
        full,
        record(ctx, args, s, raw, drop=("results",)),
        page=RELIABILITY,
        plot=plot(raw, s, args, ctx),
        quoted=render(s, raw, args, ctx, f"../bench/{NAME}.svg" if in_bench else ""),
    )
    write(result, args.out, docs=not args.no_docs)
    print(full)


if __name__ == "__main__":
    main()
