"""Uploaded files in the broker, on both backends: whole by chunks, bounded in all, gone after a day."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from fleetdeck_common.filestore import (
    CHUNK_BYTES,
    FILE_TTL_SECONDS,
    FILES,
    FileStore,
    UploadRefused,
    content_key,
)
from tests.support.later import Backend

NOW = 1_000_000.0


async def fresh(backend: Backend) -> FileStore:
    """A store with no uploads yet (the Redis database is shared with the other contract tests)."""
    await backend.broker.delete(FILES)
    return FileStore(backend.broker)


async def test_a_file_reads_back_whole_and_its_index_says_what_it_is(backend: Backend) -> None:
    files = await fresh(backend)
    data = os.urandom(2 * CHUNK_BYTES + 123)
    info = await files.put(data, "alice", NOW, 10 * CHUNK_BYTES)
    assert (info.size, info.sha256, info.by) == (len(data), hashlib.sha256(data).hexdigest(), "alice")
    assert await files.read(info.file, NOW) == (info, data)
    empty = await files.put(b"", "alice", NOW, 10 * CHUNK_BYTES)
    assert await files.read(empty.file, NOW) == (empty, b"")
    assert await files.read("0" * 32, NOW) is None
    assert {f.file for f in await files.files(NOW)} == {info.file, empty.file}


async def test_all_uploads_together_are_bounded(backend: Backend) -> None:
    files = await fresh(backend)
    await files.put(b"a" * 600, "alice", NOW, 1000)
    with pytest.raises(UploadRefused, match="600 bytes are held now and this file has 401"):
        await files.put(b"b" * 401, "alice", NOW, 1000)
    await files.put(b"b" * 400, "alice", NOW, 1000)  # exactly at the bound


async def test_uploads_racing_each_other_never_pass_the_bound_together(backend: Backend) -> None:
    files = await fresh(backend)
    racing = [files.put(bytes([n]) * 400, "alice", NOW, 1000) for n in range(5)]
    outcomes = await asyncio.gather(*racing, return_exceptions=True)
    kept = [o for o in outcomes if not isinstance(o, BaseException)]
    assert all(isinstance(o, UploadRefused) for o in outcomes if isinstance(o, BaseException))
    assert 400 * len(kept) <= 1000 and sum(f.size for f in await files.files(NOW)) == 400 * len(kept)
    for info in kept:
        assert await files.read(info.file, NOW) is not None
    await files.put(b"d" * (1000 - 400 * len(kept)), "alice", NOW, 1000)  # what is left still fits


async def test_a_file_is_gone_a_day_after_its_upload(backend: Backend) -> None:
    files = await fresh(backend)
    info = await files.put(b"soon gone", "alice", NOW, 1000)
    await backend.later(content_key(info.file), FILE_TTL_SECONDS + 1)
    later = NOW + FILE_TTL_SECONDS + 1
    assert await files.read(info.file, later) is None and await files.info(info.file, later) is None
    assert await files.files(later) == []
    await files.put(b"c" * 1000, "alice", later, 1000)  # what expired no longer counts
