"""Alerts in the broker: the evaluation lease, each (rule, host)'s state, the last transitions and
the silences. Owns the keys; the gateway alone reads or writes them (the agent gets nothing).

A transition is written in one step with what it changes: `commit` checks that the caller still
holds the lease, writes the states, appends the transitions to the recent list and publishes them
on `topics.ALERTS_CHANNEL`, all or nothing (a Lua script in Redis; plain steps, which never
suspend, on the memory broker). A gateway that lost the lease writes nothing, so each transition
is published exactly once however many gateways run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from pydantic import ValidationError

from fleetdeck_common import topics
from fleetdeck_common.acl import grant
from fleetdeck_common.alerts.machine import Track
from fleetdeck_common.broker import Broker
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.jobs.store import rules_for
from fleetdeck_common.messages import Alert, dump

from .evaluation import Key, Tracked
from .silences import Silence

logger = logging.getLogger(__name__)

_LEASE = topics.key("alerts", "lease")  # string: the evaluating gateway's name, with a TTL
_STATE = topics.key("alerts", "state")  # hash: [rule, host] as JSON -> Tracked as JSON
_RECENT = topics.key("alerts", "recent")  # list: the last transitions as `alert` frames
_SILENCES = topics.key("alerts", "silences")  # hash: id -> Silence as JSON
RECENT_KEPT = 100

ACCESS = (grant(topics.key("alerts", "*"), read=["gateway"], write=["gateway"]),)

# KEYS: lease, state, recent. ARGV: owner, channel, recent kept, sets, deletes, then the sets'
# field/value pairs, the deleted fields and the transitions' frames.
COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local i = 6
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
for j = i, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[j])
  redis.call('PUBLISH', ARGV[2], ARGV[j])
end
if i <= #ARGV then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1) end
return 1
"""
# What running the script needs of an ACL (merged into `fleetdeck.redis_acl.COMMANDS_OF`).
SCRIPT_COMMANDS = {
    "alerts_commit": ("eval", *sorted({c.lower() for c in re.findall(r"redis\.call\('(\w+)'", COMMIT)})),
}


def _field(key: Key) -> str:
    return json.dumps(list(key))


def _encode(tracked: Tracked) -> str:
    return json.dumps(
        {"track": asdict(tracked.track), "alert": tracked.alert.model_dump() if tracked.alert else None}
    )


def _decode(field: str, raw: str) -> tuple[Key, Tracked]:
    rule, host = json.loads(field)
    data = json.loads(raw)
    alert = Alert.model_validate(data["alert"]) if data.get("alert") else None
    return (str(rule), str(host)), Tracked(Track(**data["track"]), alert)


class AlertStore:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._leases = rules_for(broker)

    async def hold_lease(self, owner: str, ttl: float) -> bool:
        """Take the evaluation lease if free, or extend it if `owner` holds it."""
        return await self._leases.hold_lease(_LEASE, owner, ttl)

    async def release_lease(self, owner: str) -> None:
        await self._leases.release_lease(_LEASE, owner)

    async def states(self) -> dict[Key, Tracked]:
        """Every (rule, host)'s stored state; a malformed one is logged and left out."""
        found: dict[Key, Tracked] = {}
        for field, raw in (await self._broker.hash_get_all(_STATE)).items():
            try:
                key, tracked = _decode(field, raw)
            except (ValueError, TypeError, KeyError, ValidationError):
                logger.warning("ignored a malformed alert state %r", field[:200])
                continue
            found[key] = tracked
        return found

    async def commit(
        self, owner: str, written: Mapping[Key, Tracked], removed: Sequence[Key], changes: Sequence[Alert]
    ) -> bool:
        """Write the states and publish the transitions in one step, if `owner` still holds the
        lease; False (and nothing written) if it does not."""
        sets = [(_field(k), _encode(t)) for k, t in written.items()]
        deletes = [_field(k) for k in removed]
        frames = [dump(alert) for alert in changes]
        if isinstance(self._broker, MemoryBroker):
            return await self._commit_in_memory(self._broker, owner, sets, deletes, frames)
        from fleetdeck_common.broker.redis import RedisBroker  # only with the Redis backend

        if not isinstance(self._broker, RedisBroker):
            raise TypeError(f"no alert commit for a {type(self._broker).__name__}")
        flat = [item for pair in sets for item in pair]
        args: list[str | int] = [
            owner,
            topics.ALERTS_CHANNEL,
            RECENT_KEPT,
            len(sets),
            len(deletes),
            *flat,
            *deletes,
            *frames,
        ]
        client = self._broker.client
        done = await self._broker.call(client.eval(COMMIT, 3, _LEASE, _STATE, _RECENT, *args))
        return bool(int(done))

    async def _commit_in_memory(
        self,
        broker: MemoryBroker,
        owner: str,
        sets: list[tuple[str, str]],
        deletes: list[str],
        frames: list[str],
    ) -> bool:
        if await broker.get(_LEASE) != owner:
            return False
        for field, value in sets:
            await broker.hash_set(_STATE, field, value)
        for field in deletes:
            await broker.hash_delete(_STATE, field)
        for frame in frames:
            await broker.push_capped(_RECENT, frame, RECENT_KEPT)
            await broker.publish(topics.ALERTS_CHANNEL, frame)
        return True

    async def recent(self) -> list[Alert]:
        """The last transitions, oldest first."""
        found = []
        for raw in await self._broker.read_list(_RECENT):
            try:
                found.append(Alert.model_validate_json(raw))
            except ValidationError:
                logger.warning("ignored a malformed alert transition")
        return found

    async def silences(self) -> list[Silence]:
        """Every stored silence, expired ones included, oldest first."""
        found = []
        for raw in (await self._broker.hash_get_all(_SILENCES)).values():
            try:
                found.append(Silence.model_validate_json(raw))
            except ValidationError:
                logger.warning("ignored a malformed silence")
        return sorted(found, key=lambda s: (s.created, s.id))

    async def save_silence(self, silence: Silence) -> None:
        await self._broker.hash_set(_SILENCES, silence.id, silence.model_dump_json())

    async def drop_silence(self, silence_id: str) -> None:
        await self._broker.hash_delete(_SILENCES, silence_id)
