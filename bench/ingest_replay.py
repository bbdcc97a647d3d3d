"""A simulated fleet that costs its publisher almost nothing: what `fleetdeck-agent --simulate N`
sends, encoded once and sent again every second.

The agent's own `HostStore` makes each round trip of 200 hosts (full samples, their summary,
heartbeats), recorded as Redis commands once; each second the same bytes go out again over one
connection (heartbeats in every tenth round of a batch, as the agent paces them). The values do
not move, which changes nothing for a gateway's ingest cost: it takes in every sample as new. On a
busy 2-core machine the agent itself cannot publish 10,000 hosts a second; this can.

    python -m bench.ingest_replay --redis redis://127.0.0.1:6379/0 --hosts 10000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import redis.asyncio

from fleetdeck_agent.agent import BATCH_HOSTS
from fleetdeck_agent.simulate import simulated_fleet, simulated_mounts, simulated_sample
from fleetdeck_common.broker import Write
from fleetdeck_common.broker.redis_writes import queue_write
from fleetdeck_common.hoststore import HostStore, Observation

HEARTBEAT_ROUNDS = 10  # a heartbeat every tenth sample of a host, as `publisher.HeartbeatPacer`


class _Recorder:
    """A broker that keeps the batch it is given instead of sending it."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    async def write_batch(self, writes: Sequence[Write]) -> None:
        self.writes = list(writes)


def _encoded(writes: Sequence[Write]) -> bytes:
    pipe = redis.asyncio.Redis().pipeline(transaction=False)
    for write in writes:
        queue_write(pipe, write)
    connection = redis.asyncio.Connection()  # never connected: it only encodes
    return b"".join(connection.pack_commands([args for args, _ in pipe.command_stack]))


def batches(hosts: int) -> list[tuple[bytes, bytes, int]]:
    """Per round trip of the agent: its bytes with heartbeats, without, and how many replies."""
    fleet, rng, now = simulated_fleet(hosts), random.Random(7), time.time()
    recorder = _Recorder()
    store = HostStore(recorder)  # type: ignore[arg-type]  # only write_batch is used
    out = []
    for start in range(0, hosts, BATCH_HOSTS):
        observations = [
            Observation(simulated_sample(h, now, 1.0, rng), h.labels, h.address, simulated_mounts(h, now))
            for h in fleet[start : start + BATCH_HOSTS]
        ]
        asyncio.run(store.publish(observations))
        with_beats = recorder.writes
        asyncio.run(store.publish([replace(o, beat=False) for o in observations]))
        out.append((_encoded(with_beats), _encoded(recorder.writes), len(with_beats)))
    return out


def _drain(sock: socket.socket) -> None:
    """Read and drop the replies (Redis would stop reading a client that never reads them)."""
    while sock.recv(1 << 16):
        pass


def replay(url: str, hosts: int, seconds: float) -> None:
    """Send the fleet's batches every second for `seconds` (forever when 0)."""
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname or "127.0.0.1", where.port or 6379))
    threading.Thread(target=_drain, args=(sock,), daemon=True).start()
    plan = batches(hosts)
    started = next_round = time.monotonic()
    rounds = 0
    while not seconds or time.monotonic() - started < seconds:
        for index, (beats, plain, _) in enumerate(plan):
            due = rounds == 0 or (rounds + index) % HEARTBEAT_ROUNDS == 0  # every host's first
            sock.sendall(beats if due else plain)
        rounds += 1
        if rounds == 1:
            print("replaying", flush=True)  # what the benchmark waits for
        next_round += 1.0
        time.sleep(max(0.0, next_round - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis", required=True, help="a redis:// URL on 127.0.0.1")
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: never)")
    args = parser.parse_args()
    replay(args.redis, args.hosts, args.seconds)


if __name__ == "__main__":
    main()
