"""Reading the history tiers for the gateway: a host's recent samples (the `history` frame), a
host's series and the fleet's series over any span (the HTTP API)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from fleetdeck_common.history import HistoryStore, span, totals
from fleetdeck_common.history.codec import json_rows
from fleetdeck_common.history.samples import samples_of
from fleetdeck_common.messages import CpuSample

from .query import fleet_series, host_series, plan


class HistoryReader:
    def __init__(
        self,
        store: HistoryStore,
        clock: Callable[[], float] = time.time,
        boot_of: Callable[[str], float | None] = lambda host: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._boot_of = boot_of

    async def recent(self, host: str, limit: int) -> list[CpuSample]:
        """The host's latest `limit` steps of the finest tier, as `cpu` frames (no per-core
        values; `uptime` from when the host booted, as presence knows it)."""
        tier, now = self._store.tiers[0], self._clock()
        first, end = span(tier, now - limit * tier.step, now, now)
        slots = (await self._store.read([host], tier, first, end))[host]
        return samples_of(host, slots.records()[-limit:], tier.step, self._boot_of(host))

    async def stored(self, host: str) -> bool:
        """Whether any history of `host` is kept (a host presence forgot may still have some)."""
        return await self._store.stored(host, self._clock())

    async def host(self, host: str, since: float, until: float, step: int | None) -> str:
        """`{"host", "step", "samples"}` as JSON text; ValueError naming a bad parameter."""
        chosen = plan(self._store.tiers, since, until, step, self._clock())
        tier = self._store.tiers[chosen.tier]
        slots = (await self._store.read([host], tier, chosen.first, chosen.end))[host]
        if chosen.step == tier.step:  # the stored records as they are: written straight from the bits
            rows = json_rows(slots.data, slots.start, tier.step, tier.record_size)
        else:
            rows = [
                json.dumps(s, separators=(",", ":"))
                for s in host_series(slots.records(), tier.step, chosen.step)
            ]
        return f'{{"host":{json.dumps(host)},"step":{chosen.step},"samples":[{",".join(rows)}]}}'

    async def fleet(
        self, hosts: Sequence[str], since: float, until: float, step: int | None
    ) -> dict[str, Any]:
        """`{"step", "samples"}` over the hosts' `total`; ValueError naming a bad parameter."""
        chosen = plan(self._store.tiers, since, until, step, self._clock())
        tier = self._store.tiers[chosen.tier]
        read = await self._store.read(hosts, tier, chosen.first, chosen.end) if hosts else {}
        values = {host: totals(slots.data, tier.record_size) for host, slots in read.items()}
        return {"step": chosen.step, "samples": fleet_series(values, chosen.first, tier.step, chosen.step)}
