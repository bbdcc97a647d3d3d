"""Terminals in the broker: the queue of open requests (one worker takes each), each side's
channel, each session's record and recording, the list of recent sessions, and each user's open
terminals on every gateway (for the per-user limit). Owns those keys and channels; the agent may
touch none of them."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import topics
from ..acl import grant
from ..broker import (
    Batches,
    Event,
    HashSet,
    KeyValue,
    Publish,
    PubSub,
    PushCapped,
    StreamEntry,
    StreamLog,
    Streams,
)
from .wire import TermMessage, TermRequest

logger = logging.getLogger(__name__)

QUEUE = topics.key("terms", "queue")  # stream: signed open requests; the workers' group takes each once
GROUP = "workers"
_INDEX = topics.key("terms")  # list: recent terminal ids, oldest first
_TERM = topics.key("term")  # fleetdeck:term:ID (hash: open, taken, end) and fleetdeck:term:ID:cast
_OPEN = topics.key("terms", "open")  # fleetdeck:terms:open:USER (hash: terminal id -> counts until)
QUEUE_KEEP = 10_000
INDEX_KEEP = 10_000
CAST_LINES = 1_000_000  # the recording's cap is in characters (`cast`); this only bounds the list

ACCESS = (
    grant(QUEUE, read=["worker"], write=["gateway", "worker"]),
    grant(_INDEX, read=["gateway"], write=["gateway"]),
    grant(f"{_OPEN}:*", read=["gateway"], write=["gateway"], batches={"gateway": ["HashSet"]}),
    grant(
        f"{_TERM}:*",
        read=["gateway", "worker"],
        write=["gateway", "worker"],
        batches={"worker": ["PushCapped", "Publish"]},
    ),
)


class TermRecord(BaseModel):
    """One session as `GET /api/terms` lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    host: str
    user: str
    start: float
    end: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    cols: int
    rows: int
    cut: bool = False  # the recording reached its cap


class TermBackend(KeyValue, PubSub, Batches, Streams, StreamLog, Protocol):
    pass


def worker_channel(worker: str) -> str:
    """The worker's channel: input, resizes, acknowledgements, closes and beats from gateways."""
    return topics.TERM_WORKER_CHANNEL.removesuffix("*") + worker


def gateway_channel(gateway: str) -> str:
    """The gateway's channel: taken, opened, output, closed and beats from workers."""
    return topics.TERM_GATEWAY_CHANNEL.removesuffix("*") + gateway


def _term_key(term: str) -> str:
    return f"{_TERM}:{term}"


def _cast_key(term: str) -> str:
    return f"{_TERM}:{term}:cast"


def _open_key(user: str) -> str:
    return f"{_OPEN}:{user}"


class TermStore:
    def __init__(self, broker: TermBackend, keep: float) -> None:
        self._broker = broker
        self.keep = keep  # seconds a session's record and recording are kept

    # --- opening -------------------------------------------------------------------------------

    async def queue(self, request: TermRequest, signature: str | None) -> None:
        """Record the session, list it, and queue the request for one worker."""
        record = TermRecord(
            id=request.term,
            host=request.host,
            user=request.user,
            start=request.ts,
            cols=request.cols,
            rows=request.rows,
        )
        key = _term_key(request.term)
        await self._broker.hash_set(key, "record", record.model_dump_json())
        await self._broker.expire(key, self.keep)
        await self._broker.push_capped(_INDEX, request.term, INDEX_KEEP)
        fields = {"request": request.model_dump_json()}
        if signature is not None:
            fields["sig"] = signature
        await self._broker.stream_append(QUEUE, fields, QUEUE_KEEP)

    async def ensure_queue(self) -> None:
        await self._broker.group_ensure(QUEUE, GROUP)

    async def take(self, worker: str, block: float) -> list[StreamEntry]:
        """Open requests for this worker (each goes to one worker only); acknowledged at once."""
        entries = await self._broker.group_read(QUEUE, GROUP, worker, 4, block)
        for entry in entries:
            await self._broker.group_ack(QUEUE, GROUP, entry.id)
        return entries

    async def mark_taken(self, term: str, entry_id: str) -> bool:
        """True for the first queue entry to claim this terminal id (a replay is not)."""
        key = _term_key(term)
        first = await self._broker.hash_set_if_absent(key, "taken", entry_id)
        await self._broker.expire(key, self.keep)
        return first

    # --- each user's open terminals, on every gateway -----------------------------------------

    async def claim(self, user: str, term: str, until: float, now: float) -> list[str]:
        """Count `term` among the user's open terminals until `until` (unix time); the terminals
        that count now, it included. Added before counting, so two gateways racing for the last
        place may both refuse but never both accept; entries not renewed in time are dropped."""
        key = _open_key(user)
        await self._broker.hash_set(key, term, repr(until))
        await self._broker.expire(key, until - now)
        live = []
        for other, raw in (await self._broker.hash_get_all(key)).items():
            try:
                counts = float(raw) > now
            except ValueError:
                counts = False
            if counts:
                live.append(other)
            else:
                await self._broker.hash_delete(key, other)
        return live

    async def renew(self, held: Mapping[str, Sequence[str]], until: float, now: float) -> None:
        """Keep counting these terminals (user -> terminal ids) until `until`."""
        writes = [
            HashSet(_open_key(user), term, repr(until)) for user, terms in held.items() for term in terms
        ]
        if writes:
            await self._broker.write_batch(writes)
        for user in held:
            await self._broker.expire(_open_key(user), until - now)

    async def release(self, user: str, term: str) -> None:
        await self._broker.hash_delete(_open_key(user), term)

    # --- talking ---------------------------------------------------------------------------------

    async def to_worker(self, worker: str, message: TermMessage) -> None:
        await self._broker.publish(worker_channel(worker), message.encode())

    async def to_gateway(self, gateway: str, message: TermMessage) -> None:
        await self._broker.publish(gateway_channel(gateway), message.encode())

    def listen(self, channel_name: str) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._broker.subscribe([channel_name])

    async def output(self, gateway: str, message: TermMessage, cast_lines: Sequence[str]) -> None:
        """Send output to the gateway and append it to the recording, in one round trip."""
        cast = _cast_key(message.term)
        writes: list[Any] = [PushCapped(cast, line, CAST_LINES) for line in cast_lines]
        writes.append(Publish(gateway_channel(gateway), message.encode()))
        await self._broker.write_batch(writes)

    async def start_cast(self, term: str, header: str) -> None:
        cast = _cast_key(term)
        await self._broker.write_batch([PushCapped(cast, header, CAST_LINES)])
        await self._broker.expire(cast, self.keep)

    # --- records ---------------------------------------------------------------------------------

    async def end(self, term: str, exit_code: int | None, reason: str, at: float, cut: bool = False) -> None:
        """Write how the session ended (the first end written stays)."""
        end = json.dumps({"end": at, "exit_code": exit_code, "reason": reason, "cut": cut})
        key = _term_key(term)
        await self._broker.hash_set_if_absent(key, "end", end)
        await self._broker.expire(key, self.keep)

    async def record(self, term: str) -> TermRecord | None:
        fields = await self._broker.hash_get_all(_term_key(term))
        raw = fields.get("record")
        if raw is None:
            return None
        try:
            record = TermRecord.model_validate_json(raw)
            if "end" in fields:
                record = record.model_copy(update=json.loads(fields["end"]))
        except (ValidationError, ValueError):
            logger.warning("ignored a malformed record of terminal %r", term)
            return None
        return record

    async def recent(self, limit: int) -> list[TermRecord]:
        """The latest sessions still kept, newest first."""
        ids = (await self._broker.read_list(_INDEX))[::-1]
        found: list[TermRecord] = []
        for term in ids:
            if len(found) >= limit:
                break
            record = await self.record(term)
            if record is not None:
                found.append(record)
        return found

    async def cast(self, term: str) -> list[str]:
        """The recording's lines (header first); empty when there is none."""
        return await self._broker.read_list(_cast_key(term))
