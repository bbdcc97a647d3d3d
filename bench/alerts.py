"""Benchmark: alert evaluation at 10,000 simulated hosts x 10 rules, and how soon a webhook hears.

What it measures and how: docs/benchmarks.md ("Alerts"). Its summary: bench/alerts.md.

    scripts/bench alerts        # or: .venv/bin/python -m bench.alerts

One run, three phases on one Redis and one simulated fleet: the gateway without rules (the
baseline), then a gateway with the rules and a webhook of the benchmark's own (testbed/webhook.py),
whose CPU above the baseline is the evaluation's cost, and whose POSTs time each `for: 0s`
alert from its condition (the sample's own time, the alert's startsAt) to its arrival. Then a
real agent is killed, again and again, and each `offline` alert is timed from the kill.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from testbed.procs import BIN, Gateway, service_env, wait_until
from testbed.webhook import WebhookReceiver

from .alerts_eval import evaluation_cpu
from .harness import Report, Result, common_options, fill, run
from .measure import CpuWindow, percentile
from .stack import Stack, make_token

VICTIM = "alert-victim"
INSTANT = ("cpu-hot", "disk-full")  # the `for: 0s` metric rules whose latency is timed
RULES = [
    {"name": "cpu-hot", "expr": "total > 90", "severity": "critical"},
    {"name": "cpu-busy", "expr": "total > 75", "for": "30s"},
    {"name": "cpu-idle", "expr": "total < 1", "for": "1m", "severity": "info"},
    {"name": "mem-high", "expr": "mem > 90", "for": "1m"},
    {"name": "disk-full", "expr": "disk >= 95", "severity": "critical"},
    {"name": "disk-filling", "expr": "disk >= 85", "for": "5m"},
    {"name": "load-high", "expr": "load1 > 8", "for": "2m"},
    {"name": "net-rx", "expr": "net_rx > 1e8", "for": "1m", "severity": "info"},
    {"name": "net-tx", "expr": "net_tx > 1e8", "for": "1m", "severity": "info"},
    {"name": "host-offline", "expr": "offline", "severity": "critical"},
]
PRESENCE_TIMEOUT = 3.0  # a host is offline after three missed 1 s intervals (feeds/hosttable.py)

REPORT = Report(
    name="alerts",
    title="Alerts: evaluation cost and delivery latency",
    options={"hosts": 10000, "duration": 30.0, "kills": 5, "interval": 1.0},
    target={
        "evaluation_cpu_pct": 10,
        "latency_p99_ms": 3000,
        "offline_max_ms": (PRESENCE_TIMEOUT + 3) * 1000,
    },
    head="""{hosts:,} simulated hosts x {rules} rules evaluated once a second by one gateway, with a
    webhook of the benchmark's own; {context}.""",
    targets="""
evaluation cost: one `evaluate` a second, its own CPU time | {evaluation_cpu_pct:.1f}% of one core
    | ≤ {target[evaluation_cpu_pct]}% | evaluation_cpu_pct
the gateway's CPU with the rules less without (wall-clock window) | {gateway_delta_pct:.1f}% of one core
condition → webhook (`for: 0s`), p50 | {latency_p50_ms:ms}
condition → webhook (`for: 0s`), p99 | {latency_p99_ms:ms} | ≤ {target[latency_p99_ms]:ms} | latency_p99_ms
agent killed → `offline` alert at the webhook, worst of {kills} | {offline_worst}
    | ≤ presence timeout ({presence_s:g} s) + 3 s | offline_max_ms
""",
    also="""
gateway CPU without rules (the baseline) / with them | {baseline_cpu_pct:.1f}% / {rules_cpu_pct:.1f}%
one `evaluate` (median of {eval_rounds}) | {evaluate_cpu_ms:.0f} ms of CPU
(rule, host) states kept / written each evaluation (phase changes) / firing
    | {evaluate_tracks:,} / {evaluate_written:,.0f} / {evaluate_firing:,.0f}
window, each | {duration:g} s
times the gateway lost its own lease (no longer evaluating), up to the window's end
    | {lease_lost}
simulated hosts online at the end of the window with rules | {online_end:,} (a sample every {interval:g} s)
webhook POSTs in the window / alerts in them | {posts:,} / {alerts_sent:,}
transitions timed (`for: 0s` firing) | {latency_count:,}
condition → webhook, max | {latency_max_ms:ms}
agent killed → `offline` alert, each | {offline_each}
CPU of the simulated agent / Redis (with rules) | {agent_cpu_pct:.0f}% / {redis_cpu_pct:.0f}%
""",
)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _latencies(posts: list[Any]) -> list[float]:
    """Arrival less startsAt (the sample that met the condition) of each `for: 0s` firing alert."""
    return [
        (post.at - _ts(alert["startsAt"])) * 1000
        for post in posts
        for alert in post.body["alerts"]
        if alert["status"] == "firing" and alert["labels"]["alertname"] in INSTANT
    ]


def _victim_alert(receiver: WebhookReceiver, after: int, host: str) -> float | None:
    """When `host`'s `host-offline` alert began to fire at the webhook, in POSTs after the `after`th."""
    for post in receiver.received[after:]:
        for alert in post.body["alerts"]:
            labels, status = alert["labels"], alert["status"]
            if (labels["alertname"], labels["host"], status) == ("host-offline", host, "firing"):
                return float(post.at)
    return None


def _hosts(gateway: Gateway, token: str) -> list[dict[str, Any]]:
    """GET /api/hosts, waiting as long as a gateway busy with a large fleet on a loaded machine may take."""
    answer = httpx.get(f"{gateway.url}/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    hosts: list[dict[str, Any]] = answer.json()["hosts"]
    return hosts


def _online(gateway: Gateway, token: str, host: str) -> bool:
    return any(row["host"] == host and row.get("online") for row in _hosts(gateway, token))


def _wait_known(gateway: Gateway, token: str, count: int) -> None:
    """Until the gateway knows the whole simulated fleet (online or not: a starved agent lags)."""
    wait_until(lambda: len(_hosts(gateway, token)) >= count, 600, 1.0, f"{count} hosts known")


def _within(check: Callable[[], bool], seconds: float) -> bool:
    """Whether `check` came true within `seconds` (asked twice a second)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_and_time(
    stack: Stack, redis_url: str, receiver: WebhookReceiver, gateway: Gateway, token: str, round_: int
) -> float:
    """Start a real agent (a new host each round), let it be seen, SIGKILL it: ms from the kill
    to its offline alert at the webhook; NaN when none came within a minute."""
    name = f"{VICTIM}-{round_}"
    env = service_env(redis_url, FLEETDECK_AGENT_NAME=name, FLEETDECK_LOG_LEVEL="WARNING")
    agent = stack.service(name, [str(BIN / "fleetdeck-agent")], env)
    if not _within(lambda: _online(gateway, token, name), 60):
        agent.stop()
        return float("nan")
    time.sleep(PRESENCE_TIMEOUT)  # seen online for a while, as a host that then dies would be
    seen = len(receiver.received)
    os.kill(agent.pid, signal.SIGKILL)
    killed = time.time()
    _within(lambda: _victim_alert(receiver, seen, name) is not None, 60)
    arrived = _victim_alert(receiver, seen, name)
    agent.stop()
    return float("nan") if arrived is None else (arrived - killed) * 1000


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rules = tmp / "rules.yml"
    rules.write_text(yaml.safe_dump({"rules": RULES}, sort_keys=False))
    evaluation = evaluation_cpu(rules, args.hosts, args.eval_rounds)  # before any process starts
    receiver = WebhookReceiver()
    with Stack(tmp) as stack:
        stack.callback(receiver.stop)
        redis = stack.redis()
        assert redis.service is not None
        tokens = tmp / "tokens.txt"
        token = make_token(tokens)
        agent = stack.simulated_fleet(redis.url, args.hosts, FLEETDECK_INTERVAL=str(args.interval))
        plain = stack.gateway(redis.url, tokens, name="gateway-without-rules")
        _wait_known(plain, token, args.hosts)
        time.sleep(args.settle)
        baseline, _ = _window([plain.service.pid], args.duration)
        plain.service.stop()
        env = {"FLEETDECK_ALERT_RULES": str(rules), "FLEETDECK_ALERT_WEBHOOK": receiver.url}
        gateway = stack.gateway(redis.url, tokens, name="gateway-with-rules", **env)
        _wait_known(gateway, token, args.hosts)
        time.sleep(args.settle)  # past the first evaluation's flood of what already holds
        first = len(receiver.received)
        cpu, machine = _window([gateway.service.pid, agent.pid, redis.service.pid], args.duration)
        posts = receiver.received[first:]
        online_end = sum(1 for row in _hosts(gateway, token) if row.get("online"))
        lease_lost = gateway.service.log().count("no longer evaluating alert rules")
        offline = [_kill_and_time(stack, redis.url, receiver, gateway, token, i) for i in range(args.kills)]
    return {
        "baseline_cpu_pct": baseline[plain.service.pid],
        "rules_cpu_pct": cpu[gateway.service.pid],
        "agent_cpu_pct": cpu[agent.pid],
        "redis_cpu_pct": cpu[redis.service.pid],
        "latencies_ms": _latencies(posts),
        "posts": len(posts),
        "alerts_sent": sum(len(p.body["alerts"]) for p in posts),
        "offline_ms": offline,
        "online_end": online_end,
        **evaluation,
        "lease_lost": lease_lost,
        **machine,
    }


def _window(pids: list[int], seconds: float) -> tuple[dict[int, float], dict[str, float]]:
    """Each process's CPU (% of one core) over `seconds`, and the rest of the machine's."""
    window = CpuWindow(pids)
    time.sleep(seconds)
    return window.close()


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    latencies = sorted(raw["latencies_ms"])
    nan = float("nan")
    s: dict[str, Any] = {
        "rules": len(RULES),
        "presence_s": PRESENCE_TIMEOUT,
        "evaluation_cpu_pct": raw["evaluate_cpu_ms"] / 10,  # once a second: ms per s is 0.1% of a core
        "gateway_delta_pct": raw["rules_cpu_pct"] - raw["baseline_cpu_pct"],
        "latency_count": len(latencies),
        "latency_p50_ms": percentile(latencies, 0.5) if latencies else nan,
        "latency_p99_ms": percentile(latencies, 0.99) if latencies else nan,
        "latency_max_ms": latencies[-1] if latencies else nan,
        # A kill whose alert never came (NaN) is the worst of all.
        "offline_max_ms": max((math.inf if math.isnan(v) else v for v in raw["offline_ms"]), default=nan),
        "offline_worst": "-",
        "offline_each": ", ".join(
            "none in 60 s" if math.isnan(v) else f"{v / 1000:.1f} s" for v in raw["offline_ms"]
        )
        or "-",
    }
    worst = s["offline_max_ms"]
    s["offline_worst"] = "none within 60 s" if math.isinf(worst) else fill("{v:ms}", {"v": worst})
    s["met"] = {
        "evaluation_cpu_pct": s["evaluation_cpu_pct"] <= REPORT.target["evaluation_cpu_pct"],
        "latency_p99_ms": s["latency_p99_ms"] <= REPORT.target["latency_p99_ms"],
        "offline_max_ms": s["offline_max_ms"] <= REPORT.target["offline_max_ms"],
    }
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=REPORT.options["hosts"])
    parser.add_argument(
        "--duration", type=float, default=REPORT.options["duration"], help="seconds per window"
    )
    parser.add_argument("--eval-rounds", type=int, default=5, help="evaluations timed in this process")
    parser.add_argument(
        "--interval", type=float, default=REPORT.options["interval"], help="seconds between a host's samples"
    )
    parser.add_argument(
        "--kills", type=int, default=REPORT.options["kills"], help="agents killed, one by one"
    )
    common_options(parser)
    run(parser.parse_args(), measure, summarize, REPORT.summary, Result(REPORT.name, REPORT.title, "", {}))


if __name__ == "__main__":
    main()
