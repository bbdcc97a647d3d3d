"""The job rules on Redis: each one a Lua script, so checking and writing cannot be interleaved
with another client. Run through the Redis broker's own client and time bound (`call`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..broker.redis import RedisBroker
from .rules import Fenced, Submission

# KEYS: record, index, queue. ARGV: record, ttl ms, index value, index limit, channel, entry fields...
ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 6))
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 1
"""
# KEYS: lease. ARGV: owner, ttl ms.
HOLD_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS: lease. ARGV: owner.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: lease, stream, marker. ARGV: owner, position, entry fields...
APPEND_FENCED = """
local holder = redis.call('GET', KEYS[1])
if holder == false then return -2 end
if holder ~= ARGV[1] then return -1 end
if tonumber(ARGV[2]) <= tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[3], ARGV[2], 'KEEPTTL')
return 1
"""


def _called(script: str) -> tuple[str, ...]:
    """What running `script` needs of an ACL: EVAL itself and every command the script calls."""
    return ("eval", *sorted({name.lower() for name in re.findall(r"redis\.call\('(\w+)'", script)}))


# By the `RedisRules` method that runs each script.
SCRIPT_COMMANDS = {
    "enqueue": _called(ENQUEUE),
    "hold_lease": _called(HOLD_LEASE),
    "release_lease": _called(RELEASE_LEASE),
    "append_fenced": _called(APPEND_FENCED),
}
_FENCED = {1: Fenced.WRITTEN, 0: Fenced.DUPLICATE, -1: Fenced.NOT_HOLDER, -2: Fenced.NO_LEASE}


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


class RedisRules:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    async def _eval(self, script: str, keys: tuple[str, ...], *args: str | int) -> int:
        return int(await self._broker.call(self._broker.client.eval(script, len(keys), *keys, *args)))

    async def enqueue(self, submission: Submission) -> bool:
        added = await self._eval(
            ENQUEUE,
            (submission.record_key, submission.index_key, submission.stream),
            submission.record,
            int(submission.ttl * 1000),
            submission.index_value,
            submission.index_limit,
            submission.channel,
            *_flat(submission.entry),
        )
        return bool(added)

    async def hold_lease(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._eval(HOLD_LEASE, (key,), owner, int(ttl * 1000)))

    async def release_lease(self, key: str, owner: str) -> None:
        await self._eval(RELEASE_LEASE, (key,), owner)

    async def append_fenced(
        self, stream: str, fields: Mapping[str, str], lease: str, owner: str, marker: str, position: int
    ) -> Fenced:
        outcome = await self._eval(APPEND_FENCED, (lease, stream, marker), owner, position, *_flat(fields))
        return _FENCED[outcome]
