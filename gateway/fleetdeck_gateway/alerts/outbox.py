"""Alert deliveries not yet made, in the broker, so a gateway taking over the evaluation lease
sends what a gateway that died left unsent. Owns the outbox keys; gateways only, never the agent.

One hash holds every undelivered POST (id -> JSON: destination, body, first try, owner); each
sending gateway keeps a short-lived key saying it is alive. A parcel whose owner's key has
expired belongs to nobody, and the lease holder adopts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fleetdeck_common import topics
from fleetdeck_common.acl import grant
from fleetdeck_common.broker import KeyValue

_OUTBOX = topics.key("alerts", "outbox")
ALIVE_PATTERN = topics.key("alerts", "sender", "*")  # every sending gateway's alive key
ACCESS = (
    grant(_OUTBOX, read=["gateway"], write=["gateway"]),
    grant(ALIVE_PATTERN, read=["gateway"], write=["gateway"]),
)


def _alive_key(owner: str) -> str:
    return topics.key("alerts", "sender", owner)


@dataclass(frozen=True)
class Parcel:
    """One POST to make: `body` (JSON text) to the destination `dest` names, first tried at `first`
    (unix seconds), held by the gateway `owner`."""

    id: str
    dest: str
    body: str
    first: float
    owner: str


class OutboxStore:
    def __init__(self, broker: KeyValue) -> None:
        self._broker = broker

    async def put(self, parcel: Parcel) -> None:
        """Keep `parcel` until it is delivered or given up (written again to change its owner)."""
        record = {"dest": parcel.dest, "body": parcel.body, "first": parcel.first, "owner": parcel.owner}
        await self._broker.hash_set(_OUTBOX, parcel.id, json.dumps(record))

    async def done(self, parcel_id: str) -> None:
        """Forget a parcel: delivered, or given up."""
        await self._broker.hash_delete(_OUTBOX, parcel_id)

    async def parcels(self) -> list[Parcel]:
        """Every parcel not yet delivered, unreadable records left out."""
        found = []
        for parcel_id, raw in (await self._broker.hash_get_all(_OUTBOX)).items():
            try:
                record = json.loads(raw)
                found.append(
                    Parcel(
                        parcel_id,
                        str(record["dest"]),
                        str(record["body"]),
                        float(record["first"]),
                        str(record["owner"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        return found

    async def owner_of(self, parcel_id: str) -> str | None:
        """Who holds the parcel now, or None when it is no longer in the outbox."""
        for parcel in await self.parcels():
            if parcel.id == parcel_id:
                return parcel.owner
        return None

    async def alive(self, owner: str, ttl: float) -> None:
        """Say `owner` is still sending, for `ttl` seconds."""
        await self._broker.set(_alive_key(owner), "1", ttl)

    async def is_alive(self, owner: str) -> bool:
        return await self._broker.get(_alive_key(owner)) is not None
