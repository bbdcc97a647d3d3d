"""Long history: tiers of packed records per host (codec, tiers, rollup, writer: pure) and their store."""

from __future__ import annotations

from .codec import RECORD_SIZE, Record, decode, decode_all, encode, totals
from .rollup import Accumulator, Rollups, rollup
from .store import ACCESS, HistoryStore, Slots, chunk_key, span
from .tiers import CHUNK_BYTES, DEFAULT_TIERS, RECORDS_PER_CHUNK, Tier, parse_tiers, tiers_text
from .writer import FLUSH_EVERY, HistoryWriter, Run

__all__ = [
    "ACCESS",
    "CHUNK_BYTES",
    "DEFAULT_TIERS",
    "FLUSH_EVERY",
    "RECORDS_PER_CHUNK",
    "RECORD_SIZE",
    "Accumulator",
    "HistoryStore",
    "HistoryWriter",
    "Record",
    "Rollups",
    "Run",
    "Slots",
    "Tier",
    "chunk_key",
    "decode",
    "decode_all",
    "encode",
    "parse_tiers",
    "rollup",
    "span",
    "tiers_text",
    "totals",
]
