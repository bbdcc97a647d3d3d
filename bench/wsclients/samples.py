"""The Redis side of a client process: every sample the agent published and when, and the matching
of the host entries the clients receive to those samples (latency, `--reach`).

A `fleet` entry carries no time: it is matched to the newest sample with its values from before
the frame's tick, once the subscriber has seen past that tick (an idle host that repeats a reading
is not taken for its older sample)."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import msgspec  # type: ignore[import-not-found,unused-ignore]  # the bench extra

from fleetdeck_common import topics

from .frames import FleetFrame, SampleHead, SampleKey, Stats, Window, histogram_add, resp_item


class SampleBook:
    """What was published, and which entries the probe clients received matched to it."""

    def __init__(self, args: argparse.Namespace, window: Window) -> None:
        self.args = args
        self.window = window
        self.stats = Stats()
        self.published: set[tuple[str, float]] = set()  # cpu: samples published in the window
        self.decode_sample = msgspec.json.Decoder(SampleHead).decode
        # --reach
        self.arrivals: dict[str, list[tuple[float, float]]] = {}  # host -> (sample ts, seen at)
        self.ticks: set[float] = set()  # the `ts` of every fleet frame received (the gateway's ticks)
        self.reach_counts: Counter[tuple[str, float]] = Counter()  # (host, ts) -> probes it reached
        self.reach_last: dict[int, dict[str, float]] = {}  # probe -> host -> newest sample ts
        # fleet: each sample's values -> the `ts` of every sample with them; entries waiting
        self.sample_times: dict[SampleKey, list[float]] = {}
        self.seen_until = 0.0  # the newest sample `ts` the subscriber has seen
        self.deferred: list[tuple[SampleKey, float, float, int, bool]] = []

    def reset(self) -> None:
        """A new window: its figures start from nothing."""
        self.stats = Stats()
        self.published = set()
        self.reach_counts = Counter()

    async def watch(self, redis_url: str, subscribed: asyncio.Event) -> None:
        """Every sample published, read with a few lines of RESP: redis-py's pure-Python parser
        would cost these processes a third of their CPU at 1,000 samples a second (and hiredis
        would also speed up the gateway, which shares this environment)."""
        where = urlsplit(redis_url)
        reader, writer = await asyncio.open_connection(where.hostname or "127.0.0.1", where.port or 6379)
        channel = topics.CPU_CHANNEL.encode()
        writer.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel))
        await writer.drain()
        pruned = time.time()
        try:
            while True:
                items = [await resp_item(reader) for _ in range(int((await reader.readuntil(b"\r\n"))[1:-2]))]
                if items[0] == b"subscribe":
                    subscribed.set()
                elif items[0] == b"message":
                    sample = self.decode_sample(items[2])
                    if self.args.mode != "fleet":
                        if self.window.holds(sample.ts):
                            self.published.add((sample.host, sample.ts))
                    elif self._remember(sample) - pruned > 30:
                        pruned = sample.ts
                        self._prune(pruned - 60)
        finally:
            writer.close()

    def _remember(self, sample: SampleHead) -> float:
        key = (sample.host, sample.total, sample.mem, sample.load[0] if sample.load else 0.0)
        self.sample_times.setdefault(key, []).append(sample.ts)
        if self.args.reach:
            self.arrivals.setdefault(sample.host, []).append((sample.ts, time.time()))
        if sample.ts > self.seen_until:
            self.seen_until = sample.ts
            self.resolve_deferred(final=False)
        return sample.ts

    def _prune(self, before: float) -> None:
        self.sample_times = {
            k: kept for k, v in self.sample_times.items() if (kept := [t for t in v if t > before])
        }
        if self.args.reach:
            keep = min(before, self.window.start - 5)
            for host, seen in self.arrivals.items():
                self.arrivals[host] = [a for a in seen if a[0] > keep]

    def time_entries(self, frame: FleetFrame, now: float, index: int, timed: bool = True) -> None:
        """A probe's frame: the latency of every host entry with a new sample, once matched (with
        --reach and not `timed`, only which samples reached it)."""
        for entry in frame.hosts or ():
            if not entry.online:
                self.stats.offline += timed  # a presence change: it carries no new sample
            elif entry.total is not None and entry.mem is not None and entry.load1 is not None:
                key = (entry.host, entry.total, entry.mem, entry.load1)
                self.deferred.append((key, now, frame.ts, index, timed))

    def resolve_deferred(self, final: bool) -> None:
        """Time the entries of frames whose tick the subscriber has seen past (all
        of them when `final`): each is the newest sample with its values from before the tick."""
        stats = self.stats
        waiting = []
        for key, received, tick, index, timed in self.deferred:
            if not final and tick >= self.seen_until:
                waiting.append((key, received, tick, index, timed))
                continue
            times = self.sample_times.get(key, [])
            position = bisect.bisect_right(times, tick)
            if position == 0:
                stats.unmatched += timed
                continue
            sent = times[position - 1]
            if timed:
                histogram_add(stats.latency, received - sent)
                histogram_add(stats.tick_wait, tick - sent)
            if self.args.reach:
                self.reached(index, key[0], sent)
        self.deferred = waiting

    def reached(self, index: int, host: str, sent: float) -> None:
        """--reach: a probe received this sample of this host (counted once per probe)."""
        last = self.reach_last.setdefault(index, {})
        if sent > last.get(host, 0.0):
            last[host] = sent
            if self.window.holds(sent):
                self.reach_counts[(host, sent)] += 1

    def reach_result(self, probes: int) -> dict[str, Any]:
        """--reach: of the samples published in the window, how many reached each of the `probes`
        connected throughout, and how many were superseded at the gateway (the host's next sample
        reached Redis before the gateway's next tick, so latest-wins sent only it)."""
        ticks = sorted(self.ticks)
        samples = superseded = delivered = superseded_missed = 0
        for host, seen in self.arrivals.items():
            ordered = sorted(seen)
            for i, (ts, at) in enumerate(ordered):
                if not self.window.holds(ts):
                    continue
                samples += 1
                got = min(probes, self.reach_counts.get((host, ts), 0))
                delivered += got
                if i + 1 < len(ordered):
                    j = bisect.bisect_left(ticks, at)
                    if j < len(ticks) and ticks[j] > ordered[i + 1][1]:
                        superseded += 1
                        superseded_missed += probes - got
        return {
            "reach_probes": probes,
            "reach_samples": samples,
            "reach_delivered": delivered,
            "reach_superseded_samples": superseded,
            "reach_superseded_missed": superseded_missed,
        }
