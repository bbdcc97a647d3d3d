"""Alerts in the broker: the evaluation lease, each (rule, host)'s state, the last transitions and
the silences. Owns the keys; the gateway alone reads or writes them (the agent gets nothing).

A transition is written in one step with what it changes: `commit` checks that the caller still
holds the lease, writes the states, appends the transitions to the recent list and publishes them
on `topics.ALERTS_CHANNEL`, all or nothing (a Lua script in Redis; plain steps, which never
suspend, on the memory broker). A gateway that lost the lease writes nothing, so each transition
is published exactly once however many gateways run.

Each commit also counts itself (`_COMMITS`) and names the count it expects: a gateway whose lease
lapsed (starved past its TTL) commits on, re-taking the lease, only if no other gateway took it
and committed meanwhile; otherwise its commit is refused and it reads the state again.
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
_COMMITS = topics.key("alerts", "commits")  # string: how many commits were made, ever
RECENT_KEPT = 100

ACCESS = (grant(topics.key("alerts", "*"), read=["gateway"], write=["gateway"]),)

# KEYS: lease, state, recent, commits. ARGV: owner, channel, recent kept, sets, deletes, the
# commit count expected, the lease's TTL in ms, then the sets' field/value pairs, the deleted
# fields and the transitions' frames. Returns the new commit count, or 0 when refused.
COMMIT = """
local holder = redis.call('GET', KEYS[1])
if holder ~= false and holder ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[6] then return 0 end
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[7]) end
local i = 8
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
return redis.call('INCR', KEYS[4])
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

    async def commits(self) -> int:
        """How many commits were made: read before `states`, it is what the next commit expects."""
        raw = await self._broker.get(_COMMITS)
        return int(raw) if raw else 0

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
        self,
        owner: str,
        expected: int,
        ttl: float,
        written: Mapping[Key, Tracked],
        removed: Sequence[Key],
        changes: Sequence[Alert],
    ) -> int:
        """Write the states and publish the transitions in one step, if `owner` holds the lease (or
        it is free, when it is taken for `ttl`) and `expected` commits were made: the new count,
        or 0 (and nothing written) if not."""
        sets = [(_field(k), _encode(t)) for k, t in written.items()]
        deletes = [_field(k) for k in removed]
        frames = [dump(alert) for alert in changes]
        if isinstance(self._broker, MemoryBroker):
            return await self._commit_in_memory(self._broker, owner, expected, ttl, sets, deletes, frames)
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
            expected,
            max(int(ttl * 1000), 1),
            *flat,
            *deletes,
            *frames,
        ]
        client = self._broker.client
        done = await self._broker.call(client.eval(COMMIT, 4, _LEASE, _STATE, _RECENT, _COMMITS, *args))
        return int(done)

    async def _commit_in_memory(
        self,
        broker: MemoryBroker,
        owner: str,
        expected: int,
        ttl: float,
        sets: list[tuple[str, str]],
        deletes: list[str],
        frames: list[str],
    ) -> int:
        holder = await broker.get(_LEASE)
        if holder not in (None, owner) or await self.commits() != expected:
            return 0
        if holder is None:
            await broker.set(_LEASE, owner, ttl)
        for field, value in sets:
            await broker.hash_set(_STATE, field, value)
        for field in deletes:
            await broker.hash_delete(_STATE, field)
        for frame in frames:
            await broker.push_capped(_RECENT, frame, RECENT_KEPT)
            await broker.publish(topics.ALERTS_CHANNEL, frame)
        await broker.set(_COMMITS, str(expected + 1))
        return expected + 1

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
