"""Benchmark: slow consumers. 1,000 clients follow `fleet` (1,000 simulated hosts) on one gateway; then
1% of them stop reading without closing their sockets.

Starts a Redis, `fleetdeck-agent --simulate 1000`, one `fleetdeck-gateway` (pings every
`--ping-interval` s) and client processes (bench/wsclients.py, `/ws?batch=1` as the dashboard
opens it), the clients that will stall in a process of their own, all on 127.0.0.1, then:

1. baseline: a `--duration` window with every client reading: sample -> client latency on the
   probe clients (one in `--probe-every`) of the other processes;
2. stall: `--stalled` clients (default 1%) pause their sockets' reads (the transports stop
   reading, the connections stay open) for `--stall-seconds` (default: two ping intervals and a
   margin, or with `--chat-rate`, long enough for their outboxes to fill). Measured meanwhile:
   the other clients' latency; which of the stalled clients' sockets the gateway still holds,
   every second (a socket it closed is a client it dropped); the gateway's
   `fleetdeck_gateway_slow_disconnects_total` (clients closed with 1013 because their bounded
   outbox filled); the gateway's RSS and the bytes waiting in outboxes, every second;
3. resume: the stalled clients read again and report how their connections had ended (the close
   code they find after the frames that were waiting for them, or none).

`fleet` frames and samples are latest-wins per client, so a stalled follower's outbox holds one
frame per key and never fills: the keepalive pings drop it (1011, after one to two intervals).
Only frames that must arrive (results, chat, history) fill an outbox: `--chat-rate R` has an
operator post R chat messages a second of `--chat-chars` characters, which the stalling clients
follow too, and `--ping-interval 3600` leaves the outbox limit (8 MiB) as what drops them.

Targets: the others' p99 during the stall within 100 ms of the baseline's; every stalled client
dropped by the gateway; RSS growth during the stall under the stalled clients' outbox limits
(8 MiB each). `--mode cpu` makes the clients follow every host's samples instead (keep
`--hosts` small).

Writes bench/reliability_slow.md (raw figures in bench/results/), quoted in docs/reliability.md.

    scripts/bench reliability_slow                  # 1,000 clients, 10 stall, 1,000 hosts
    scripts/bench reliability_slow --clients 200 --hosts 300 --stalled 2 --duration 20
    scripts/bench reliability_slow --ping-interval 3600 --chat-rate 40   # the outbox limit's turn
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from fleetdeck_gateway.ws.outbox import DEFAULT_BYTES_LIMIT

from .harness import RELIABILITY, Result, common_options, measured, ms, record, table, verdict, write
from .measure import Context, MachineCpu, cpu_seconds, histogram, quantile_ms, rss_median
from .reliability_common import (
    Chatter,
    add_counts,
    command_line,
    gather,
    gather_ready,
    log_problems,
    machine_rows,
    report,
)
from .stack import ClientProcess, Stack, make_token
from .watch import Queues, QueueWatch, Reading, Watch, held_ports

NAME = "reliability_slow"
TARGET_P99_DELTA_MS = 100.0
SOCKET_BUFFERS = 5 * 2**20  # what the kernel may hold for a stalled peer on loopback, both ends
DEFAULTS = {
    "clients": 1000,
    "hosts": 1000,
    "duration": 30.0,
    "stall_seconds": 0.0,
    "mode": "fleet",
    "ping_interval": 20.0,
    "chat_rate": 0.0,
    "chat_chars": 2000,
    "no_batch": False,
}
SLOW = "fleetdeck_gateway_slow_disconnects_total"
ENTRY_BYTES = 128  # about what one host adds to a client's `fleet` frames (or samples) a second


def window(spread: list[tuple[ClientProcess, int, int]], seconds: float) -> tuple[float, float]:
    start = time.time() + 1.0
    end = start + seconds
    for process, _, _ in spread:
        process.send({"cmd": "window", "start": start, "end": end, "grace": 3})
    time.sleep(max(0.0, start - time.time()))
    return start, end


def default_stalled(clients: int) -> int:
    return max(1, round(clients / 100))


def stall_seconds(args: argparse.Namespace, must_arrive_per_s: float) -> float:
    """--stall-seconds, or long enough for whichever should drop a stalled client first: the
    keepalive (two ping intervals) or, when must-arrive frames (chat) come, its outbox and the
    socket buffers before it filling at that rate; with a margin, at most --max-stall."""
    if args.stall_seconds > 0:
        return float(args.stall_seconds)
    expected = 2 * args.ping_interval + 20
    if args.chat_rate > 0 and must_arrive_per_s > 0:
        expected = min(expected, 1.3 * (DEFAULT_BYTES_LIMIT + SOCKET_BUFFERS) / must_arrive_per_s + 20)
    return float(min(args.max_stall, max(args.duration, expected)))


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with Stack(tmp) as stack:
        redis, tokens, token, gateway, agent = stack.gateway_with_fleet(
            args.hosts, FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}"
        )
        assert redis.service is not None
        operator = make_token(tokens, name="chatter", role="operator") if args.chat_rate > 0 else ""
        pid = gateway.service.pid
        time.sleep(args.settle)
        rss_before = rss_median(pid, args.settle)
        with (
            Watch(pid, 1.0, gateway) as watch,
            QueueWatch(gateway.port, watch.now, frame_bytes=args.hosts * ENTRY_BYTES) as queues,
        ):
            fleet = args.mode == "fleet"
            common: dict[str, object] = {"token": token, "redis": redis.url, "mode": args.mode}
            common |= {"probe_every": args.probe_every, "batch": not args.no_batch}
            common["max_seconds"] = 2 * args.duration + args.max_stall + 900
            # --light: only probes parse whole frames, so the client processes keep up with the
            # gateway (a client that falls behind measures its own backlog, not the gateway).
            common |= {"exact_match": fleet, "light": fleet}
            healthy = stack.spread([gateway.ws_url], args.clients - args.stalled, args.processes, **common)
            # The clients that will stall, in a process of their own (following chat too, with --chat-rate).
            also = "chat" if args.chat_rate > 0 else None
            stallers = stack.spread([gateway.ws_url], args.stalled, 1, "stalling", also_topics=also, **common)
            spread = healthy + stallers
            ready = gather_ready(spread, 300)
            with Chatter(gateway, operator, args.chat_rate, args.chat_chars) as chatter:
                time.sleep(args.settle)

                # 1. Baseline: everybody reads.
                w0 = watch.now()
                window(spread, args.duration)
                ours = [pid, agent.pid, redis.service.pid, *(p.pid for p, _, _ in spread)]
                machine, machine_t0 = MachineCpu(ours), time.monotonic()
                cpu_start, t0 = cpu_seconds(pid), time.monotonic()
                results = gather(spread, "result", args.duration + 120)
                baseline_cpu = (cpu_seconds(pid) - cpu_start) / (time.monotonic() - t0) * 100
                w1 = watch.now()
                baseline = [r for r in results[: len(healthy)] if r is not None]
                staller_rate = sum(r["frame_bytes"] for r in results[len(healthy) :] if r) / max(
                    1, args.stalled
                )
                stall_s = stall_seconds(args, args.chat_rate * (args.chat_chars + 100))

                # 2. Stall: some clients stop reading; the others go on.
                stall = _stall(args, spread, stallers, pid, watch, queues, stall_s)
                ports, stall_t = stall["ports"], stall["stall_t"]
                elapsed_all = time.monotonic() - machine_t0
                others = machine.others() / elapsed_all * 100
                interrupts, stolen = machine.kernel()
                w2 = watch.now()

                # 3. Resume: how did their connections end?
                for process, _, _ in stallers:
                    process.send({"cmd": "resume", "wait": 15})
                resumed = [r for r in gather(stallers, "resumed", 60) if r is not None]
                time.sleep(2)
                held_after = len(held_ports(pid, ports))
                w3 = watch.now()
            chat = {"sent": chatter.sent, "failed": chatter.failed}
        log = log_problems(gateway.service.log_path)
    readings = watch.readings
    return {
        "queues_baseline": _largest(queues.between(w0, w1)),
        "queues_stall": _largest(queues.between(stall_t, w2)),
        "queues_timeline": [(round(q.t - stall_t, 1), q.unread, q.unsent) for q in queues.readings],
        "ready": ready,
        "baseline": baseline,
        "during": [r for r in stall["during"][: len(healthy)] if r is not None],
        "stalled": len(ports),
        "stall_s": stall_s,
        "bytes_per_client_s": staller_rate / args.duration,
        "chat": chat,
        "resumed": resumed,
        "held": stall["held"],
        "released": stall["released"],
        "held_after_resume": held_after,
        "rss_before_kib": rss_before,
        "rss_baseline_kib": _median_rss(watch.between(w0, w1)),
        "rss_max_stall_kib": max((r.rss_kib for r in watch.between(stall_t, w2)), default=0),
        "rss_end_stall_kib": _median_rss(watch.between(w2 - 5, w2)),
        "rss_after_resume_kib": _median_rss(watch.between(w3 - 2, w3 + 1)) or readings[-1].rss_kib,
        "fds": [(r.t - stall_t, r.fds) for r in readings],
        "timeline": [
            (
                round(r.t - stall_t, 1),
                r.rss_kib,
                r.metrics.get(SLOW, math.nan),
                r.metrics.get("fleetdeck_gateway_queued_bytes", math.nan),
                r.metrics.get("fleetdeck_gateway_clients", math.nan),
            )
            for r in readings
        ],
        "slow_disconnects": _delta(watch.between(stall_t - 2, w2 + 1)),
        "slow_disconnects_before_stall": _delta(watch.between(0, stall_t)),
        "gateway_cpu_pct_baseline": baseline_cpu,
        "gateway_cpu_pct_stall": stall["cpu"],
        "others_cpu_pct": others,
        "softirq_cpu_pct": interrupts / elapsed_all * 100,
        "stolen_cpu_pct": stolen / elapsed_all * 100,
        "log": log,
    }


def _stall(
    args: argparse.Namespace,
    spread: list[tuple[ClientProcess, int, int]],
    stallers: list[tuple[ClientProcess, int, int]],
    pid: int,
    watch: Watch,
    queues: QueueWatch,
    seconds: float,
) -> dict[str, Any]:
    """The stallers stop reading for `seconds`; every process's results over that time, and which
    of the stalled clients' sockets the gateway still holds, every second."""
    for process, count, _ in stallers:
        process.send({"cmd": "stall", "count": count})
    stalled = [s for s in gather(stallers, "stalled", 30) if s is not None]
    ports = [port for s in stalled for port in s["ports"]]
    queues.exclude.update(ports)
    stall_t = watch.now()
    print(f"{len(ports)} clients stopped reading; watching for {seconds:.0f} s")
    _, end = window(spread, seconds)
    cpu_start, t0 = cpu_seconds(pid), time.monotonic()
    released: dict[int, float] = {}  # port -> seconds after the stall when the gateway let it go
    held: list[tuple[float, int]] = []
    while True:
        now = watch.now() - stall_t
        still = held_ports(pid, ports)
        held.append((round(now, 1), len(still)))
        for port in ports:
            if port not in still:
                released.setdefault(port, round(now, 1))
        if time.time() >= end:
            break
        time.sleep(min(1.0, max(0.0, end - time.time())))
    cpu = (cpu_seconds(pid) - cpu_start) / (time.monotonic() - t0) * 100
    during = gather(spread, "result", 120)
    return {
        "ports": ports,
        "stall_t": stall_t,
        "held": held,
        "released": sorted(released.values()),
        "cpu": cpu,
        "during": during,
    }


def _share(total: int, sizes: list[int]) -> list[int]:
    """`total` spread over processes in proportion to their clients."""
    whole = sum(sizes) or 1
    shares = [total * n // whole for n in sizes]
    for i in range(total - sum(shares)):
        shares[i % len(shares)] += 1
    return shares


def _largest(readings: list[Queues]) -> dict[str, int]:
    """The most that waited in the kernel at once over these readings."""
    return {
        key: max((getattr(q, key) for q in readings), default=0)
        for key in ("unread", "unread_max", "behind", "unsent")
    }


def _median_rss(readings: list[Reading]) -> int:
    return int(statistics.median(r.rss_kib for r in readings)) if readings else 0


def _delta(readings: list[Reading]) -> float:
    values = [r.metrics[SLOW] for r in readings if SLOW in r.metrics]
    return values[-1] - values[0] if values else math.nan


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    base, during = raw["baseline"], raw["during"]
    bin_ms = base[0]["bin_ms"] if base else 0.1
    base_hist = histogram(r["latency_hist"] for r in base)
    during_hist = histogram(r["latency_hist"] for r in during)
    held_end = raw["held"][-1][1] if raw["held"] else 0
    return {
        "clients_connected": sum(r.get("ready", 0) for r in raw["ready"]),
        "clients_failed": sum(r.get("failed", 0) for r in raw["ready"]),
        "stalled": raw["stalled"],
        "baseline_p50_ms": quantile_ms(base_hist, 0.50, bin_ms),
        "baseline_p99_ms": quantile_ms(base_hist, 0.99, bin_ms),
        "stall_p50_ms": quantile_ms(during_hist, 0.50, bin_ms),
        "stall_p99_ms": quantile_ms(during_hist, 0.99, bin_ms),
        "stall_max_ms": quantile_ms(during_hist, 1.0, bin_ms),
        "p99_delta_ms": quantile_ms(during_hist, 0.99, bin_ms) - quantile_ms(base_hist, 0.99, bin_ms),
        "timed_baseline": sum(base_hist.values()),
        "timed_stall": sum(during_hist.values()),
        "others_closed_during_stall": sum(r["closed"] for r in during),
        "released": raw["stalled"] - held_end,
        # The gateway stopped serving a stalled client when it closed its socket (the keepalive
        # does) or closed it as too slow (1013, it may keep the socket): whichever counted more.
        "dropped": min(raw["stalled"], max(raw["stalled"] - held_end, int(raw["slow_disconnects"] or 0))),
        "closed_as_too_slow": raw["slow_disconnects"],
        "closed_as_too_slow_before_stall": raw["slow_disconnects_before_stall"],
        "drop_times_s": raw["released"],
        "stalled_sockets_held_at_end": held_end,
        "stalled_sockets_held_after_resume": raw["held_after_resume"],
        "stalled_ended": add_counts(r.get("ended") for r in raw["resumed"]),
        "rss_growth_kib": raw["rss_max_stall_kib"] - raw["rss_baseline_kib"],
        "rss_bound_kib": raw["stalled"] * DEFAULT_BYTES_LIMIT / 1024,
        "frames_per_client_per_s_stall": sum(r["frames"] for r in during)
        / max(1, sum(r["ready"] for r in during) - raw["stalled"])
        / raw["stall_s"],
    }


def _span(times: list[float]) -> str:
    return f"{times[0]:g} s" if len(set(times)) == 1 else f"{min(times):g}-{max(times):g} s"


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    fleet = args.mode == "fleet"
    drops = s["drop_times_s"]
    stalling = s["stalled"] > 0  # --stalled 0 is the control run: nothing stalls, nothing to drop
    chat = (
        f"; an operator posts {args.chat_rate:g} chat messages a second ({args.chat_chars:,} characters), "
        "which the stalling clients follow"
        if args.chat_rate > 0
        else ""
    )
    rows = [
        ("others' p99, baseline (everyone reading)", ms(s["baseline_p99_ms"]), "", ""),
        (
            "others' p99 while some are stalled",
            f"{ms(s['stall_p99_ms'])} ({s['p99_delta_ms']:+.0f} ms)",
            f"baseline + {TARGET_P99_DELTA_MS:.0f} ms",
            verdict(s["p99_delta_ms"] <= TARGET_P99_DELTA_MS),
        ),
        (
            "stalled clients dropped by the gateway",
            f"{s['dropped']} of {s['stalled']}",
            f"{s['stalled']}" if stalling else "",
            verdict(s["dropped"] >= s["stalled"]) if stalling else "",
        ),
        (
            "closed as too slow (1013, outbox full: `slow_disconnects`)",
            f"{s['closed_as_too_slow']:.0f}",
            "",
            "",
        ),
        (
            "their sockets closed by the gateway by the end of the stall",
            f"{s['released']} of {s['stalled']}" + (f", after {_span(drops)}" if drops else ""),
            "",
            "",
        ),
        (
            "gateway RSS growth during the stall",
            f"{s['rss_growth_kib'] / 1024:.1f} MiB",
            f"< {s['rss_bound_kib'] / 1024:.0f} MiB (their outbox limits)" if stalling else "",
            verdict(s["rss_growth_kib"] < s["rss_bound_kib"]) if stalling else "",
        ),
    ]
    what = "`fleet`" if fleet else "every host's samples (`cpu`)"
    qb, qs = raw["queues_baseline"], raw["queues_stall"]
    head = (
        f"{s['clients_connected']:,} clients following {what} with {args.hosts:,} simulated hosts on one "
        f"gateway (pings every {args.ping_interval:g} s); {s['stalled']} stop reading for "
        f"{raw['stall_s']:.0f} s after a {args.duration:g} s baseline{chat}; {ctx.sentence()}.\n\n"
    )
    reproduce = command_line(NAME, args, {**DEFAULTS, "stalled": default_stalled(args.clients), "name": NAME})
    details = table(
        ("also measured", "value"),
        [
            ("clients connected / failed", f"{s['clients_connected']:,} / {s['clients_failed']:,}"),
            ("others' p50, baseline / stalled", f"{ms(s['baseline_p50_ms'])} / {ms(s['stall_p50_ms'])}"),
            ("others' latency max while stalled", ms(s["stall_max_ms"])),
            ("entries timed, baseline / stalled", f"{s['timed_baseline']:,} / {s['timed_stall']:,}"),
            ("other clients dropped during the stall", f"{s['others_closed_during_stall']:,}"),
            (
                "bytes the others had not read yet (their kernel receive buffers), most at once, "
                "baseline / stalled",
                f"{_mib(qb['unread'])} / {_mib(qs['unread'])} (one client: {_mib(qb['unread_max'])} / "
                f"{_mib(qs['unread_max'])})",
            ),
            (
                "others with over two seconds of frames unread in their buffers, most at once, "
                "baseline / stalled",
                f"{qb['behind']:,} / {qs['behind']:,}",
            ),
            (
                "bytes the gateway had not got out to the others (its kernel send buffers), most at once, "
                "baseline / stalled",
                f"{_mib(qb['unsent'])} / {_mib(qs['unsent'])}",
            ),
            (
                "what a stalling client read per second in the baseline (`fleet` frames)",
                f"{raw['bytes_per_client_s'] / 1024:.1f} KiB/s",
            ),
            (
                "chat messages posted / failed",
                f"{raw['chat']['sent']:,} / {sum(raw['chat']['failed'].values()):,}",
            ),
            (
                "seconds from the stall to each drop (the gateway's socket gone)",
                ", ".join(f"{t:g}" for t in drops) if drops else "no drop",
            ),
            (
                "TCP sockets the gateway held to the stalled clients at the end / after they read again",
                f"{s['stalled_sockets_held_at_end']} / {s['stalled_sockets_held_after_resume']}",
            ),
            (
                "how the stalled clients' connections had ended (what they read on resuming)",
                ", ".join(f"{k}: {v}" for k, v in sorted(s["stalled_ended"].items())) or "-",
            ),
            (
                "gateway RSS before clients / baseline / largest while stalled / end of stall / after resume",
                " / ".join(
                    f"{raw[k] / 1024:.1f} MiB"
                    for k in (
                        "rss_before_kib",
                        "rss_baseline_kib",
                        "rss_max_stall_kib",
                        "rss_end_stall_kib",
                        "rss_after_resume_kib",
                    )
                ),
            ),
            (
                "gateway CPU, baseline / stalled",
                f"{raw['gateway_cpu_pct_baseline']:.0f}% / {raw['gateway_cpu_pct_stall']:.0f}%",
            ),
            (
                "ERROR lines / tracebacks in the gateway's log",
                f"{raw['log']['error']} / {raw['log']['traceback']}",
            ),
            *machine_rows(raw, args),
        ],
    )
    every = max(1, round(raw["stall_s"] / 12))
    shown: dict[int, tuple[float, float, float, float, float]] = {}
    for t, rss, slow, queued, held in raw["timeline"]:
        if 0 <= t <= raw["stall_s"] + 1:
            shown.setdefault(int(t // every), (t, rss, slow, queued, held))
    kernel = raw["queues_timeline"]

    def waiting(t: float) -> tuple[str, str]:
        """The kernel-queue reading nearest to `t`."""
        if not kernel:
            return "-", "-"
        _, unread, unsent = min(kernel, key=lambda q: abs(q[0] - t))
        return _mib(unread), _mib(unsent)

    timeline = table(
        (
            "s after the stall",
            "clients held",
            "gateway RSS",
            "closed as too slow",
            "bytes queued in outboxes",
            "unread by the others (kernel)",
            "unsent to the others (kernel)",
        ),
        [
            (
                f"{t:.0f}",
                _num(held),
                f"{rss / 1024:.1f} MiB",
                _num(slow),
                _num(queued / 2**20, " MiB"),
                *waiting(t),
            )
            for t, rss, slow, queued, held in shown.values()
        ],
    )
    return report(head, rows, details, timeline, reproduce=reproduce)


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def _num(value: float, unit: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}{unit}" if unit else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=DEFAULTS["clients"])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"])
    parser.add_argument("--stalled", type=int, default=-1, help="clients that stop reading (default 1%%)")
    parser.add_argument("--mode", choices=("fleet", "cpu"), default="fleet", help="what the clients follow")
    parser.add_argument("--duration", type=float, default=DEFAULTS["duration"], help="baseline window, s")
    parser.add_argument(
        "--stall-seconds", type=float, default=0, help="how long they stall (0: until their outboxes fill)"
    )
    parser.add_argument("--max-stall", type=float, default=600, help="upper bound on the automatic stall")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="the gateway's WebSocket pings")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--probe-every", type=int, default=10, help="one client in N times every entry")
    parser.add_argument(
        "--chat-rate", type=float, default=0, help="chat messages a second, followed by the stalling clients"
    )
    parser.add_argument("--chat-chars", type=int, default=2000, help="characters of each chat message")
    parser.add_argument("--no-batch", action="store_true", help="one frame per message (not /ws?batch=1)")
    parser.add_argument(
        "--name",
        default=NAME,
        help=f"of the results files and the docs/reliability.md block (default {NAME})",
    )
    common_options(parser)
    args = parser.parse_args()
    if args.stalled < 0:
        args.stalled = default_stalled(args.clients)
    raw, ctx = measured(args, lambda tmp: measure(args, tmp), needed_fds=2 * args.clients + 200)
    s = summarize(raw, args)
    full = render(s, raw, args, ctx)
    result = Result(
        args.name,
        "Slow consumers",
        full,
        record(
            ctx,
            args,
            s,
            raw,
            drop=(
                "baseline",
                "during",
            ),
        ),
        page=RELIABILITY,
        script=NAME,
    )
    write(result, args.out, docs=not args.no_docs)
    print(full)


if __name__ == "__main__":
    main()
