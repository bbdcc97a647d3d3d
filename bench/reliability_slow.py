"""Benchmark: slow consumers. 1,000 clients follow `fleet` (1,000 simulated hosts) on one gateway; then
1% of them stop reading without closing their sockets. What it measures and how: docs/reliability.md.

    scripts/bench reliability_slow                  # 1,000 clients, 10 stall, 1,000 hosts
    scripts/bench reliability_slow --clients 200 --hosts 300 --stalled 2 --duration 20
    scripts/bench reliability_slow --ping-interval 3600 --chat-rate 40   # the outbox limit's turn
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleetdeck_gateway.ws.outbox import DEFAULT_BYTES_LIMIT

from . import reliability_common as common
from .stack import Stack, make_token
from .summaries.reliability_slow import RUN
from .watch import Reading, Watch, held_ports

SLOW = "fleetdeck_gateway_slow_disconnects_total"
ENTRY_BYTES = 128  # about what one host adds to a client's `fleet` frames (or samples) a second
SOCKET_BUFFERS = 5 * 2**20  # what the kernel may hold for a stalled peer on loopback, both ends


def stall_seconds(args: argparse.Namespace) -> float:
    """--stall-seconds, or long enough for whichever should drop a stalled client first: the
    keepalive (two ping intervals) or, when must-arrive frames (chat) come, its outbox and the
    socket buffers before it filling at that rate; with a margin, at most --max-stall."""
    if args.stall_seconds > 0:
        return float(args.stall_seconds)
    expected = 2 * args.ping_interval + 20
    if args.chat_rate > 0:
        chat_bytes_per_s = args.chat_rate * (args.chat_chars + 100)
        expected = min(expected, 1.3 * (DEFAULT_BYTES_LIMIT + SOCKET_BUFFERS) / chat_bytes_per_s + 20)
    return float(min(args.max_stall, max(args.duration, expected)))


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    stalled = args.stalled if args.stalled >= 0 else max(1, round(args.clients / 100))
    with Stack(tmp, args) as load:
        load.start(FLEETDECK_WS_PING_INTERVAL=f"{args.ping_interval:g}")
        gateway, pid = load.gateways[0], load.pids[0]
        operator = make_token(load.tokens, "chatter", "operator") if args.chat_rate > 0 else ""
        time.sleep(args.settle)
        # Clients that fall behind would measure their own backlog, not the gateway: see `Stack.follow`.
        options = {"mode": args.mode, "light": args.mode == "fleet", "probe_every": args.probe_every}
        options["max_seconds"] = 2 * args.duration + args.max_stall + 900
        with Watch(pid, 1.0, gateway, frame_bytes=args.hosts * ENTRY_BYTES) as watch:
            healthy = load.follow(args.clients - stalled, args.processes, **options)
            # The clients that will stall, in a process of their own (following chat too, with --chat-rate).
            also = "chat" if args.chat_rate > 0 else None
            stallers = load.follow(stalled, 1, "stalling", also_topics=also, **options)
            ready = load.clients.gather("ready", 300)
            with common.Chatter(gateway, operator, args.chat_rate, args.chat_chars) as chatter:
                time.sleep(args.settle)

                # 1. Baseline: everybody reads.
                w0 = watch.now()
                machine, _ = load.window(args.duration, grace=3)
                results = load.clients.gather("result", args.duration + 120)
                baseline = [r for r in results[: len(healthy)] if r is not None]
                staller_bytes = sum(r["frame_bytes"] for r in results[len(healthy) :] if r) / max(1, stalled)
                w1 = watch.now()

                # 2. Stall: some clients stop reading; the others go on.
                for process, count, _ in stallers:
                    process.send({"cmd": "stall", "count": count})
                ports = [port for s in stallers.gather("stalled", 30) if s for port in s["ports"]]
                watch.exclude.update(ports)
                stall_t, stall_s = watch.now(), stall_seconds(args)
                print(f"{len(ports)} clients stopped reading; watching for {stall_s:.0f} s")
                _, end = load.window(stall_s, grace=3)
                released = _released(pid, ports, end, lambda: round(watch.now() - stall_t, 1))
                during = load.clients.gather("result", 120)
                machine_figures = machine.close()[1]
                w2 = watch.now()

                # 3. Resume: how did their connections end?
                stallers.send({"cmd": "resume", "wait": 15})
                resumed = [r for r in stallers.gather("resumed", 60) if r is not None]
            chat = {"sent": chatter.sent, "failed": chatter.failed}
        log = common.logs(load)[0]
    return machine_figures | {
        "queues_baseline": _largest(watch.between(w0, w1)),
        "queues_stall": _largest(watch.between(stall_t, w2)),
        "ready": ready,
        "baseline": baseline,
        "during": [r for r in during[: len(healthy)] if r is not None],
        "stalled": len(ports),
        "stall_s": stall_s,
        "bytes_per_client_s": staller_bytes / args.duration,
        "chat": chat,
        "resumed": resumed,
        "released": released,
        "rss_baseline_kib": int(statistics.median([r.rss_kib for r in watch.between(w0, w1)] or [0])),
        "rss_max_stall_kib": max((r.rss_kib for r in watch.between(stall_t, w2)), default=0),
        "timeline": [
            {
                "t": round(r.t - stall_t, 1),
                "rss": r.rss_kib,
                "slow": r.metrics.get(SLOW, math.nan),
                "queued": r.metrics.get("fleetdeck_gateway_queued_bytes", math.nan),
                "held": r.metrics.get("fleetdeck_gateway_clients", math.nan),
                "unread": r.queues.unread if r.queues else math.nan,
                "unsent": r.queues.unsent if r.queues else math.nan,
            }
            for r in watch.readings
        ],
        "slow_disconnects": _delta(watch.between(stall_t - 2, w2 + 1)),
        "log": log,
    }


def _released(pid: int, ports: list[int], end: float, clock: Callable[[], float]) -> list[float]:
    """Until `end`, every second: when (seconds after the stall, by `clock`) the gateway let go of
    each of the stalled clients' sockets."""
    released: dict[int, float] = {}
    while True:
        now = clock()
        for port in set(ports) - held_ports(pid, ports):
            released.setdefault(port, now)
        if time.time() >= end:
            return sorted(released.values())
        time.sleep(min(1.0, max(0.0, end - time.time())))


def _largest(readings: list[Reading]) -> dict[str, int]:
    """The most that waited in the kernel at once over these readings."""
    queues = [asdict(r.queues) for r in readings if r.queues]
    return {
        key: max((q[key] for q in queues), default=0) for key in ("unread", "unread_max", "behind", "unsent")
    }


def _delta(readings: list[Reading]) -> float:
    values = [r.metrics[SLOW] for r in readings if SLOW in r.metrics]
    return values[-1] - values[0] if values else math.nan


if __name__ == "__main__":
    common.main(
        RUN, __doc__, measure, needed_fds=lambda args: 2 * args.clients + 200, drop=("baseline", "during")
    )
