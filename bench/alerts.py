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
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from testbed.procs import BIN, Gateway, service_env, wait_until
from testbed.webhook import WebhookReceiver

from .harness import Report, Result, common_options, run
from .measure import CpuWindow, percentile
from .stack import Stack, make_token, wait_for_hosts

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
    options={"hosts": 10000, "duration": 30.0, "kills": 5},
    target={
        "evaluation_cpu_pct": 10,
        "latency_p99_ms": 3000,
        "offline_max_ms": (PRESENCE_TIMEOUT + 3) * 1000,
    },
    head="""{hosts:,} simulated hosts x {rules} rules evaluated once a second by one gateway, with a
    webhook of the benchmark's own; {context}.""",
    targets="""
evaluation cost (gateway CPU with the rules less without) | {evaluation_cpu_pct:.1f}% of one core
    | ≤ {target[evaluation_cpu_pct]}% | evaluation_cpu_pct
condition → webhook (`for: 0s`), p50 | {latency_p50_ms:ms}
condition → webhook (`for: 0s`), p99 | {latency_p99_ms:ms} | ≤ {target[latency_p99_ms]:ms} | latency_p99_ms
agent killed → `offline` alert at the webhook, worst of {kills} | {offline_max_ms:ms}
    | ≤ presence timeout ({presence_s:g} s) + 3 s | offline_max_ms
""",
    also="""
gateway CPU without rules (the baseline) / with them | {baseline_cpu_pct:.1f}% / {rules_cpu_pct:.1f}%
window, each | {duration:g} s
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


def _victim_alert(receiver: WebhookReceiver, after: int, status: str) -> float | None:
    """When the victim's `host-offline` alert with `status` arrived, in POSTs after the `after`th."""
    for post in receiver.received[after:]:
        for alert in post.body["alerts"]:
            labels = alert["labels"]
            if (
                labels["alertname"] == "host-offline"
                and labels["host"] == VICTIM
                and alert["status"] == status
            ):
                return float(post.at)
    return None


def _online(gateway: Gateway, token: str, host: str) -> bool:
    answer = httpx.get(f"{gateway.url}/api/hosts", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    return any(row["host"] == host and row.get("online") for row in answer.json()["hosts"])


def _kill_and_time(
    stack: Stack, redis_url: str, receiver: WebhookReceiver, gateway: Gateway, token: str, round_: int
) -> float:
    """Start a real agent, let it be seen, SIGKILL it: ms from the kill to its offline alert."""
    env = service_env(redis_url, FLEETDECK_AGENT_NAME=VICTIM, FLEETDECK_LOG_LEVEL="WARNING")
    agent = stack.service(f"victim-{round_}", [str(BIN / "fleetdeck-agent")], env)
    seen = len(receiver.received)
    wait_until(lambda: _online(gateway, token, VICTIM), 60, 0.2, "the agent online")
    if round_:  # the last round's alert resolves once the agent is back
        wait_until(lambda: _victim_alert(receiver, seen, "resolved") is not None, 60, what="the resolve")
    time.sleep(PRESENCE_TIMEOUT)  # seen online for a while, as a host that then dies would be
    seen = len(receiver.received)
    os.kill(agent.pid, signal.SIGKILL)
    killed = time.time()
    wait_until(lambda: _victim_alert(receiver, seen, "firing") is not None, 60, what="the offline alert")
    arrived = _victim_alert(receiver, seen, "firing")
    assert arrived is not None
    agent.stop()
    return (arrived - killed) * 1000


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rules = tmp / "rules.yml"
    rules.write_text(yaml.safe_dump({"rules": RULES}, sort_keys=False))
    receiver = WebhookReceiver()
    with Stack(tmp) as stack:
        stack.callback(receiver.stop)
        redis = stack.redis()
        assert redis.service is not None
        tokens = tmp / "tokens.txt"
        token = make_token(tokens)
        agent = stack.simulated_fleet(redis.url, args.hosts)
        plain = stack.gateway(redis.url, tokens, name="gateway-without-rules")
        wait_for_hosts(plain, token, int(args.hosts * 0.9), timeout=300)  # a starved agent lags
        time.sleep(args.settle)
        baseline, _ = _window([plain.service.pid], args.duration)
        plain.service.stop()
        env = {"FLEETDECK_ALERT_RULES": str(rules), "FLEETDECK_ALERT_WEBHOOK": receiver.url}
        gateway = stack.gateway(redis.url, tokens, name="gateway-with-rules", **env)
        wait_for_hosts(gateway, token, int(args.hosts * 0.9), timeout=300)
        time.sleep(args.settle)  # past the first evaluation's flood of what already holds
        first = len(receiver.received)
        cpu, machine = _window([gateway.service.pid, agent.pid, redis.service.pid], args.duration)
        posts = receiver.received[first:]
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
        "evaluation_cpu_pct": raw["rules_cpu_pct"] - raw["baseline_cpu_pct"],
        "latency_count": len(latencies),
        "latency_p50_ms": percentile(latencies, 0.5) if latencies else nan,
        "latency_p99_ms": percentile(latencies, 0.99) if latencies else nan,
        "latency_max_ms": latencies[-1] if latencies else nan,
        "offline_max_ms": max(raw["offline_ms"], default=nan),
        "offline_each": ", ".join(f"{v / 1000:.1f} s" for v in raw["offline_ms"]) or "-",
    }
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
    parser.add_argument(
        "--kills", type=int, default=REPORT.options["kills"], help="agents killed, one by one"
    )
    common_options(parser)
    run(parser.parse_args(), measure, summarize, REPORT.summary, Result(REPORT.name, REPORT.title, "", {}))


if __name__ == "__main__":
    main()
