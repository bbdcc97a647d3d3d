"""Benchmark: slow consumers. 1,000 clients follow `fleet` (1,000 simulated hosts) on one gateway; then
1% of them stop reading without closing their sockets.

What it measures and how: docs/reliability.md. Its summary: bench/reliability_slow.md
(raw figures in bench/results/).

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

from .harness import RELIABILITY, Result, run
from .measure import MachineCpu, cpu_seconds, rss_median
from .reliability_common import Chatter, Spread, gather, gather_ready, load_parser, log_problems, open_window
from .stack import Stack, make_token
from .summaries.reliability_slow import DEFAULTS, NAME, SOCKET_BUFFERS, default_stalled, render, summarize
from .watch import Queues, QueueWatch, Reading, Watch, held_ports

SLOW = "fleetdeck_gateway_slow_disconnects_total"
ENTRY_BYTES = 128  # about what one host adds to a client's `fleet` frames (or samples) a second


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
                open_window(spread, args.duration, grace=3)
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
            {
                "t": round(r.t - stall_t, 1),
                "rss": r.rss_kib,
                "slow": r.metrics.get(SLOW, math.nan),
                "queued": r.metrics.get("fleetdeck_gateway_queued_bytes", math.nan),
                "held": r.metrics.get("fleetdeck_gateway_clients", math.nan),
            }
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
    spread: Spread,
    stallers: Spread,
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
    _, end = open_window(spread, seconds, grace=3)
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


def main() -> None:
    helps = {
        "duration": "baseline window, s",
        "stalled": "clients that stop reading (default 1%%)",
        "mode": "what the clients follow",
        "stall_seconds": "how long they stall (0: until their outboxes fill)",
        "max_stall": "upper bound on the automatic stall",
        "chat_rate": "chat messages a second, followed by the stalling clients",
        "chat_chars": "characters of each chat message",
        "name": f"of the results files and the docs/reliability.md block (default {NAME})",
    }
    args = load_parser(__doc__, DEFAULTS, helps, choices={"mode": ("fleet", "cpu")}).parse_args()
    if args.stalled < 0:
        args.stalled = default_stalled(args.clients)
    result = Result(args.name, "Slow consumers", "", {}, script=NAME, page=RELIABILITY)
    run(args, measure, summarize, render, result, 2 * args.clients + 200, drop=("baseline", "during"))


if __name__ == "__main__":
    main()
