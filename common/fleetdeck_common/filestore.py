"""Uploaded files in the broker, for copy jobs: their bytes and an index of them. Owns the keys.

`file:{id}` holds a file's bytes and expires after `FILE_TTL_SECONDS`; `files` maps each id to
its size, SHA-256, uploader and expiry, so the gateway can bound all uploads together and the
worker can check what it read. An upload's index entry is written first, as a reservation, and
only then are all entries counted: of uploads racing each other (on one gateway or several), each
counts the others, so together they never pass the bound. A worker checks size and SHA-256, so an
entry whose bytes are still being written is never taken for the file.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Protocol

from . import topics
from .acl import grant
from .broker import Batches, ByteRange, ByteStrings, KeyValue, Reserve, SetRange, Write

FILES = topics.key("files")  # hash: file id -> FileInfo JSON
FILE_TTL_SECONDS = 24 * 3600
CHUNK_BYTES = 1024 * 1024  # one SETRANGE / GETRANGE of a file

# The gateway stores uploads (their bytes in one batch); the worker reads them; agents nothing.
ACCESS = (
    grant(FILES, read=["gateway", "worker"], write=["gateway"]),
    grant(
        topics.key("file", "*"),
        read=["gateway", "worker"],
        write=["gateway"],
        batches={"gateway": ["Reserve", "SetRange"]},
    ),
)


def content_key(file_id: str) -> str:
    return topics.key("file", file_id)


class FileBackend(KeyValue, Batches, ByteStrings, Protocol):
    pass


@dataclass(frozen=True)
class FileInfo:
    """What `POST /api/files` answers, and what the index keeps of a file."""

    file: str
    size: int
    sha256: str
    by: str
    expires: float


class UploadRefused(Exception):
    """An upload past the total bound, with a sentence saying so."""


class FileStore:
    def __init__(self, broker: FileBackend) -> None:
        self._broker = broker

    async def files(self, now: float) -> list[FileInfo]:
        """The files not yet expired; expired entries are dropped from the index on the way."""
        kept = []
        for file_id, raw in (await self._broker.hash_get_all(FILES)).items():
            try:
                info = FileInfo(**json.loads(raw))
            except (ValueError, TypeError):
                info = None
            if info is None or info.expires <= now:
                await self._broker.hash_delete(FILES, file_id)
            else:
                kept.append(info)
        return kept

    async def info(self, file_id: str, now: float) -> FileInfo | None:
        """The file's entry, or None if it is unknown or expired (read only: the worker's view)."""
        raw = (await self._broker.hash_get_all(FILES)).get(file_id)
        if raw is None:
            return None
        try:
            info = FileInfo(**json.loads(raw))
        except (ValueError, TypeError):
            return None
        return info if info.expires > now else None

    async def put(self, data: bytes, by: str, now: float, total_limit: int) -> FileInfo:
        """Store `data` as a new file; UploadRefused when all uploads together would pass `total_limit`."""
        info = FileInfo(
            file=secrets.token_hex(16),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            by=by,
            expires=round(now + FILE_TTL_SECONDS, 3),
        )
        await self._broker.hash_set(FILES, info.file, json.dumps(asdict(info)))  # the reservation
        try:
            used = sum(f.size for f in await self.files(now))
            if used > total_limit:
                raise UploadRefused(
                    f"uploads are bounded to {total_limit} bytes in all (FLEETDECK_MAX_UPLOADS_TOTAL); "
                    f"{used - len(data)} bytes are held now and this file has {len(data)}; try again "
                    "once older uploads expire (a day after they were sent)"
                )
            key = content_key(info.file)
            writes: list[Write] = [Reserve(key, 0, FILE_TTL_SECONDS)]
            writes += [
                SetRange(key, at, data[at : at + CHUNK_BYTES]) for at in range(0, len(data), CHUNK_BYTES)
            ]
            await self._broker.write_batch(writes)
        except BaseException:
            await self._broker.hash_delete(FILES, info.file)
            raise
        return info

    async def read(self, file_id: str, now: float) -> tuple[FileInfo, bytes] | None:
        """The file's entry and bytes, or None if it is unknown, expired or no longer whole."""
        info = await self.info(file_id, now)
        if info is None:
            return None
        key = content_key(file_id)
        ranges = [
            ByteRange(key, at, min(at + CHUNK_BYTES, info.size)) for at in range(0, info.size, CHUNK_BYTES)
        ]
        data = b"".join(await self._broker.read_ranges(ranges)) if ranges else b""
        if len(data) != info.size or hashlib.sha256(data).hexdigest() != info.sha256:
            return None
        return info, data
