"""Benchmark: the agent's publish path on its own Redis user and over TLS, against a plain connection.

One redis-server on 127.0.0.1 with a plain port and a TLS port (a CA and certificate made by
testbed/tls.py), loaded with the ACL file `fleetdeck redis-users` writes, `default` left on for the
plain side. `fleetdeck-agent --simulate N` publishes into it, one agent process at a time, in
rounds that rotate the order of the three ways in: plain (`default`, redis://), acl (the agent's
user, redis://) and acl+tls (the agent's user, rediss:// with the CA). Per round, over a window
after the agent's first full tick: the agent's and Redis's CPU (CPU time over wall time, /proc),
commands/s and samples/s (Redis's INFO commandstats). Writes bench/agent_publish.md.

    scripts/bench agent_publish     # or: .venv/bin/python -m bench.agent_publish --hosts 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from fleetdeck.redis_users import write_users
from testbed.procs import RedisServer, Service, free_port, wait_until
from testbed.tls import Certificates, make_certificates

from . import harness
from .measure import Context, CpuWindow, cpu_seconds, spread
from .stack import Stack

NAME = "agent_publish"
TITLE = "Agent publish path: its own Redis user and TLS against a plain connection"
VARIANTS = ("plain", "acl", "acl+tls")
DEFAULTS = {"hosts": 10000, "rounds": 4, "seconds": 10.0}
WHO = ("agent", "redis")
FIGURES = ("samples_s", "commands_s", "agent_cpu_pct", "redis_cpu_pct", "agent_ms_per_1k", "redis_ms_per_1k")


def start_redis(stack: Stack, certs: Certificates) -> tuple[Service, dict[str, str]]:
    """redis-server with both ports and the generated users; the URL of each way in."""
    plain, tls = free_port(), free_port()
    users = stack.workdir / "users"
    acl = write_users(users, f"redis://127.0.0.1:{plain}/0")["agent"]
    # Run again with the TLS URL: the passwords are kept, only the URLs in the env files change.
    acl_tls = write_users(users, f"rediss://127.0.0.1:{tls}/0?ssl_ca_certs={certs.ca_cert}")["agent"]
    lines = (users / "users.acl").read_text().splitlines()
    aclfile = stack.workdir / "bench.acl"  # the generated users, `default` on for the plain side
    body = [line for line in lines if not line.startswith("user default ")]
    aclfile.write_text("\n".join(["user default on nopass ~* &* +@all", *body]) + "\n")
    argv = [
        shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(plain),
        "--tls-port", str(tls), "--bind", "127.0.0.1", "--tls-cert-file", str(certs.server_cert),
        "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca_cert),
        "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(stack.workdir),
        "--aclfile", str(aclfile),
    ]  # fmt: skip
    server = stack.service("redis", argv, {})
    plain_url = f"redis://127.0.0.1:{plain}/0"
    wait_until(lambda: RedisServer.ping(plain_url), 10, what="redis-server to answer")
    return server, {"plain": plain_url, "acl": acl, "acl+tls": acl_tls}


def calls(admin: redis.Redis) -> dict[str, int]:
    """Calls per command so far (INFO commandstats)."""
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in admin.info("commandstats").items()}


def one_round(
    stack: Stack, url: str, hosts: int, seconds: float, redis_pid: int, admin: redis.Redis
) -> dict[str, Any]:
    """One agent on `url`: its first tick, then a window of `seconds`; CPU and calls over the window."""
    health = stack.workdir / f"agent-{hosts}.health"
    health.unlink(missing_ok=True)
    agent = stack.simulated_fleet(url, hosts)
    try:
        wait_until(health.exists, 120, interval=0.1, what="the agent's first tick")
        where = urlsplit(url)  # the agent is connected as the side says: this user, this port
        me = admin.client_id()
        seen = {(c["user"], c["laddr"].rsplit(":", 1)[1]) for c in admin.client_list() if c["id"] != str(me)}
        assert (where.username or "default", str(where.port)) in seen, (url, seen)
        before = (cpu_seconds(agent.pid), cpu_seconds(redis_pid), calls(admin), time.monotonic())
        time.sleep(seconds)  # the window measured; the agent runs at its own pace meanwhile
        after = (cpu_seconds(agent.pid), cpu_seconds(redis_pid), calls(admin), time.monotonic())
        total = cpu_seconds(agent.pid)  # its start and first tick too: not the rest of the machine
    finally:
        agent.stop()
    wall = after[3] - before[3]
    made = {name: n - before[2].get(name, 0) for name, n in after[2].items()}
    ours = {"info": made.get("info", 0)}  # this benchmark's own reads
    commands = sum(made.values()) - ours["info"]
    return {
        "window_s": wall,
        "agent_cpu_pct": (after[0] - before[0]) / wall * 100,
        "redis_cpu_pct": (after[1] - before[1]) / wall * 100,
        "commands_s": commands / wall,
        "samples_s": made.get("publish", 0) / wall,
        "agent_ms_per_1k": (after[0] - before[0]) * 1e6 / max(1, made.get("publish", 0)),
        "redis_ms_per_1k": (after[1] - before[1]) * 1e6 / max(1, made.get("publish", 0)),
        "calls": made,
        "agent_total_cpu_s": total,
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The server, a warm-up agent, then --rounds of each way in, the order rotating each round."""
    with Stack(tmp) as stack:
        server, urls = start_redis(stack, make_certificates(tmp / "tls"))
        admin = redis.Redis.from_url(urls["plain"], decode_responses=True)
        stack.callback(admin.close)
        one_round(stack, urls["plain"], args.hosts, 0, server.pid, admin)  # fills the keys once
        machine, started = CpuWindow([os.getpid(), server.pid]), time.monotonic()
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for number, variant in harness.rotations(VARIANTS, args.rounds):
            one = one_round(stack, urls[variant], args.hosts, args.seconds, server.pid, admin)
            rounds[variant].append(one | {"round": number})
        window = time.monotonic() - started
    # The agents come and go, so CpuWindow counts them with the rest of the machine: take them out.
    agents = sum(r["agent_total_cpu_s"] for runs in rounds.values() for r in runs)
    return {
        "rounds": rounds,
        "window_s": window,
        "others_cpu_pct": max(0.0, machine.others() - agents) / window * 100,
    }


def summarize(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    per = {v: {k: spread([r[k] for r in runs]) for k in FIGURES} for v, runs in raw["rounds"].items()}
    ratios = {
        v: {
            w: _ratio(per[v][f"{w}_ms_per_1k"]["median"], per["plain"][f"{w}_ms_per_1k"]["median"])
            for w in WHO
        }
        for v in per
    }
    return {"sides": per, "ratios": ratios, **{k: raw[k] for k in ("others_cpu_pct", "window_s")}}


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan  # a window too short for /proc's 10 ms ticks


def _cell(figure: dict[str, float], unit: str = "") -> str:
    d = 1 if unit == "%" else 0  # CPU: /proc counts 10 ms ticks, 0.1% of a core over a 10 s window
    return f"{figure['median']:,.{d}f}{unit} ({figure['min']:,.{d}f}-{figure['max']:,.{d}f})"


def render(s: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace, ctx: Context) -> str:
    rows = [
        [
            variant,
            *(_cell(side[k], "%" if k.endswith("pct") else "") for k in FIGURES[:4]),
            *(f"{side[f'{w}_ms_per_1k']['median']:.0f} ms ({s['ratios'][variant][w]:.2f}x)" for w in WHO),
        ]
        for variant, side in s["sides"].items()
    ]
    header = ("", "samples/s", "commands/s", "agent CPU", "Redis CPU", "agent CPU / 1k samples")
    changed = [f"--{k} {getattr(args, k):g}" for k, d in DEFAULTS.items() if getattr(args, k) != d]
    return (
        f"`fleetdeck-agent --simulate {args.hosts:,}` (1 Hz, 200 hosts a round trip) into one "
        f"redis-server on 127.0.0.1, {args.rounds} rounds of {args.seconds:g} s per way in, the order "
        "rotating each round, after a warm-up tick: plain is `default` on redis://, acl the agent's "
        "generated user on redis://, acl+tls that user on rediss:// with a CA of testbed/tls.py. "
        "Median (min-max) over the rounds; CPU in % of one core (CPU time / wall, /proc); per 1k "
        f"samples: CPU milliseconds, the median and its ratio to plain. {ctx.sentence()}.\n\n"
        f"{harness.table((*header, 'Redis CPU / 1k samples'), rows)}\n\n"
        f"The rest of the machine used {s['others_cpu_pct']:.0f}% of a core over the "
        f"{s['window_s']:.0f} s of rounds. An agent that cannot keep up publishes fewer samples a "
        "second than it has hosts; the per-sample figures compare the ways in either way.\n\n"
        f"Reproduce: `{' '.join(['scripts/bench', NAME, *changed])}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or NAME).splitlines()[0])
    parser.add_argument("--hosts", type=int, default=DEFAULTS["hosts"], help="simulated hosts, one agent")
    parser.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="rounds of each way in")
    parser.add_argument("--seconds", type=float, default=DEFAULTS["seconds"], help="each round's window")
    harness.common_options(parser, settle=0)
    args = parser.parse_args()
    harness.run(args, measure, summarize, render, harness.Result(NAME, TITLE, "", {}))


if __name__ == "__main__":
    main()
