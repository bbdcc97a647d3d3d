"""`--fleet-format compact`: fleet clients on compact frames, each with its own
fleetdeck_common.fleet_compact.Decoder; probes time the entries as JSON probes do, matched to samples
on their values rounded as the frames carry them (to 0.1)."""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from fleetdeck_common.fleet_compact import CompactFrameError, Decoder, code
from fleetdeck_common.fleet_compact.layout import FULL, HEADER, VERSION

from .clients import Clients, Session
from .frames import FleetEntry, FleetFrame, SampleHead
from .samples import SampleBook


def tenths(x: float) -> float:
    """A value as a compact frame carries it back (docs/protocol.md: 1 + tenths, half up)."""
    return (code(x) - 1) / 10


class CompactBook(SampleBook):
    """The samples published, remembered by their values rounded to 0.1."""

    def _remember(self, sample: SampleHead) -> float:
        load = [tenths(sample.load[0])] if sample.load else []
        rounded = SampleHead(
            sample.type, sample.host, sample.ts, tenths(sample.total), tenths(sample.mem), load
        )
        return super()._remember(rounded)


class CompactClients(Clients):
    """`--count` clients following `fleet` in compact frames."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.book = CompactBook(self.args, self.window)

    async def follow(self, socket: ClientConnection, session: Session) -> None:
        """Subscribe to `fleet` in compact frames, then count every binary frame; a text message is
        an `error` (counted) or not about the fleet."""
        subscribe = {"type": "subscribe", "topics": ["fleet", *self.also_topics], "fleet_format": "compact"}
        await socket.send(json.dumps(subscribe))
        read = self._compact_reader(session, session.index % self.args.probe_every == 0)
        while True:
            received = await socket.recv(decode=False)
            if session.index in self.stalled:
                await self.resumed.wait()
                continue
            if received[:1] in (b"{", b"["):
                self._count_errors(received)
                continue
            read(time.time(), received)

    def _count_errors(self, message: bytes) -> None:
        """A text message (a frame, or with --batch an array of them): its `error` frames counted."""
        try:
            frames = json.loads(message)
        except ValueError:
            self.stats.bad += 1
            return
        for frame in frames if isinstance(frames, list) else [frames]:
            if isinstance(frame, dict) and frame.get("type") == "error":
                self.stats.errors[str(frame.get("code"))] += 1

    def _compact_reader(self, session: Session, probe: bool) -> Callable[[float, bytes], None]:
        """Every client decodes every frame with its own Decoder, but for --light ones, which read
        the header only (version, flags, ts), as JSON --light clients read a frame's head."""
        decoder = Decoder() if probe or not self.args.light else None
        index = session.index

        def read(now: float, message: bytes) -> None:
            frame = None
            try:
                if decoder is not None:
                    frame = decoder.feed(message)
                    ts, full = float(frame["ts"]), bool(frame["full"])
                else:
                    version, flags, ts = HEADER.unpack_from(message)
                    full = bool(flags & FULL)
                    if version != VERSION:
                        raise CompactFrameError(f"version {version}")
            except (CompactFrameError, struct.error):
                self.stats.bad += 1
                return
            self.became_ready(session)
            if not self.window.holds(now):
                return
            self.per_client[index] += 1
            self.stats.tick(now, ts, len(message))
            self.stats.light_frames += frame is None
            if frame is not None:
                hosts = frame["hosts"]
                self.stats.entries += len(hosts)
                if probe:
                    entries = [
                        FleetEntry(h["host"], h["online"], h["total"], h["mem"], h["load1"]) for h in hosts
                    ]
                    self.book.time_entries(FleetFrame("fleet", ts, full, entries), now, index)

        return read
