"""One evaluation's CPU, in this process: the gateway's own `evaluate` over a simulated fleet's
samples (the agent's own simulation), timed with `time.process_time`, so what other processes
take of the machine does not count (as it does in a starved gateway's wall time)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetdeck_agent.simulate import simulated_fleet, simulated_sample
from fleetdeck_common.alerts.rulesfile import load_rules
from fleetdeck_gateway.alerts.evaluation import Key, Tracked, evaluate
from fleetdeck_gateway.alerts.selection import Selections, Watched
from fleetdeck_gateway.feeds.fleet import Latest
from fleetdeck_gateway.feeds.hosttable import HostEntry


def evaluation_cpu(rules_file: Path, hosts: int, rounds: int) -> dict[str, Any]:
    """The median CPU ms of one evaluation of the rules over `hosts` hosts, one second of samples
    apart (the first round, which starts every state, left out), and what each evaluation wrote."""
    rules = load_rules(rules_file)
    fleet = simulated_fleet(hosts)
    known = [HostEntry(h.name, True, h.labels, h.address) for h in fleet]  # as the host table lists them
    rng, start = random.Random(7), time.time()
    tracks: dict[Key, Tracked] = {}
    selections = Selections()  # as the gateway's evaluator keeps them: the fleet's labels do not change

    def choose(targets: str | None, hosts: Sequence[Watched]) -> Sequence[Watched]:
        return selections.choose(targets, hosts, 0)

    cpu_ms, written, firing = [], [], []
    for second in range(rounds + 1):
        now = start + second
        latest = {}
        for host in fleet:
            s = simulated_sample(host, now, 1.0, rng)
            values = {"total": s.total, "mem": s.mem, "load1": s.load[0], "disk": s.disk}
            latest[host.name] = Latest(**values, net_rx=s.net_rx, net_tx=s.net_tx, ts=s.ts)
        began = time.process_time()
        outcome = evaluate(rules, known, latest.get, tracks, now, choose)
        if second:
            cpu_ms.append((time.process_time() - began) * 1000)
            written.append(len(outcome.written))
            firing.append(len(outcome.firing()))
        tracks = outcome.tracks
    return {
        "evaluate_cpu_ms": statistics.median(cpu_ms),
        "evaluate_written": statistics.median(written),
        "evaluate_tracks": len(tracks),
        "evaluate_firing": statistics.median(firing),
    }
