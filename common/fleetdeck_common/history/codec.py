"""A history record packed into 10 bytes (14 in the finest tier): each value quantized, the
record's time implicit in its slot.

Layout (one little-endian integer, bit 0 first): `total` (10 bits), `total_max` (10), `mem` (10),
`disk` (10) as 0.1 % steps; `load1` (13), `net_rx` (13), `net_tx` (13) as small floats; one spare
bit. A wide record (WIDE_RECORD_SIZE, the finest tier's) goes on with `load5` (13) and `load15`
(13), so the samples of a v1 `history` frame keep `load` as [1, 5, 15]. Every field stores 0 for
"absent", so an all-zero record is an empty slot (what Redis SETRANGE leaves in a gap). Pure.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

RECORD_SIZE = 10
WIDE_RECORD_SIZE = 14  # 106 bits: the narrow record's 80 and load5, load15
EMPTY = bytes(RECORD_SIZE)

_PCT_BITS = 10
_PCT_MASK = (1 << _PCT_BITS) - 1
_FLOAT_BITS = 13
_FLOAT_MASK = (1 << _FLOAT_BITS) - 1
_MANTISSA_BITS = 8
_MANTISSA = 1 << _MANTISSA_BITS
_FLOAT_MAX_CODE = _FLOAT_MASK - 1  # code + 1 must fit in 13 bits
LOAD_UNIT = 0.01  # load1 is exact to 0.01 below 2.56, then to 1 part in 512
RATE_UNIT = 1.0  # bytes/s: exact below 256, then to 1 part in 512


class Record(NamedTuple):
    """One slot of a tier: a sample, or the mean of the samples in a step (`total_max` their highest)."""

    total: float
    total_max: float
    mem: float | None
    load1: float | None
    disk: float | None
    net_rx: float | None
    net_tx: float | None
    load5: float | None = None  # kept in wide records only (the finest tier)
    load15: float | None = None


def _pct(value: float | None) -> int:
    if value is None:
        return 0
    return 1 + round((0.0 if value < 0.0 else 100.0 if value > 100.0 else value) * 10)


def _unpct(code: int) -> float | None:
    return None if code == 0 else (code - 1) / 10


def _small(value: float | None, unit: float) -> int:
    """A non-negative number as 1 + (exponent << 8 | mantissa), 0 for absent."""
    if value is None:
        return 0
    n = round(value / unit) if value > 0.0 else 0
    if n < _MANTISSA:
        return 1 + n
    exponent = n.bit_length() - _MANTISSA_BITS
    mantissa = round(n / (1 << (exponent - 1))) - _MANTISSA
    if mantissa == _MANTISSA:  # rounded up to the next power of two
        exponent, mantissa = exponent + 1, 0
    code = (exponent << _MANTISSA_BITS) | mantissa
    return 1 + (code if code < _FLOAT_MAX_CODE else _FLOAT_MAX_CODE)


def _unsmall(code: int, unit: float) -> float | None:
    if code == 0:
        return None
    code -= 1
    exponent, mantissa = code >> _MANTISSA_BITS, code & (_MANTISSA - 1)
    n = mantissa if exponent == 0 else (_MANTISSA + mantissa) << (exponent - 1)
    return round(n * unit, 2)


# Every code's value, looked up rather than computed: reading 10,000 records stays in milliseconds.
PCT_VALUES: tuple[float | None, ...] = tuple(_unpct(code) for code in range(1 << _PCT_BITS))
LOAD_VALUES: tuple[float | None, ...] = tuple(_unsmall(code, LOAD_UNIT) for code in range(1 << _FLOAT_BITS))
RATE_VALUES: tuple[float | None, ...] = tuple(_unsmall(code, RATE_UNIT) for code in range(1 << _FLOAT_BITS))


def encode(record: Record, wide: bool = False) -> bytes:
    """The record packed; `wide` keeps load5 and load15 too (WIDE_RECORD_SIZE bytes)."""
    total, peak, mem, load1, disk, rx, tx, load5, load15 = record  # once per sample: kept lean
    bits = (
        _pct(total)
        | _pct(peak) << 10
        | _pct(mem) << 20
        | _pct(disk) << 30
        | _small(load1, LOAD_UNIT) << 40
        | _small(rx, RATE_UNIT) << 53
        | _small(tx, RATE_UNIT) << 66
    )
    if not wide:
        return bits.to_bytes(RECORD_SIZE, "little")
    bits |= _small(load5, LOAD_UNIT) << 80 | _small(load15, LOAD_UNIT) << 93
    return bits.to_bytes(WIDE_RECORD_SIZE, "little")


def decode(data: bytes) -> Record | None:
    """The record in `data` (RECORD_SIZE or WIDE_RECORD_SIZE bytes), None for an empty slot."""
    bits = int.from_bytes(data, "little")
    total = PCT_VALUES[bits & _PCT_MASK]
    if total is None:
        return None
    peak = PCT_VALUES[bits >> 10 & _PCT_MASK]
    return Record(
        total,
        total if peak is None else peak,
        PCT_VALUES[bits >> 20 & _PCT_MASK],
        LOAD_VALUES[bits >> 40 & _FLOAT_MASK],
        PCT_VALUES[bits >> 30 & _PCT_MASK],
        RATE_VALUES[bits >> 53 & _FLOAT_MASK],
        RATE_VALUES[bits >> 66 & _FLOAT_MASK],
        LOAD_VALUES[bits >> 80 & _FLOAT_MASK],
        LOAD_VALUES[bits >> 93 & _FLOAT_MASK],
    )


def decode_all(data: bytes, size: int = RECORD_SIZE) -> list[Record | None]:
    """Every slot in `data` (`size` bytes each), in order (a short tail is left out)."""
    end = len(data) - len(data) % size
    return [decode(data[i : i + size]) for i in range(0, end, size)]


def totals(data: bytes, size: int = RECORD_SIZE) -> list[float | None]:
    """Only the `total` of every slot: what the fleet series needs, read without decoding the rest."""
    end = len(data) - len(data) % size
    words = array("H", data[:end])  # `total` is the low 10 bits of each record's first u16
    if array("H", b"\x01\x00")[0] != 1:
        words.byteswap()
    values = PCT_VALUES
    return [values[w & _PCT_MASK] for w in words[:: size // 2]]


def _text(value: float | None) -> str:
    return "null" if value is None else repr(value)


_PCT_TEXT = tuple(_text(v) for v in PCT_VALUES)
_LOAD_TEXT = tuple(_text(v) for v in LOAD_VALUES)
_RATE_TEXT = tuple(_text(v) for v in RATE_VALUES)


def json_rows(data: bytes, first: int, step: int, size: int = RECORD_SIZE) -> list[str]:
    """Each stored record in `data` (slots of `size` bytes, `step` apart from `first`) as the JSON
    object the history API answers with, written straight from the bits (a week of minutes in
    milliseconds)."""
    pct, load, rate, mask, fmask = _PCT_TEXT, _LOAD_TEXT, _RATE_TEXT, _PCT_MASK, _FLOAT_MASK
    rows = []
    for i in range(0, len(data) - len(data) % size, size):
        bits = int.from_bytes(data[i : i + size], "little")
        if not (total := bits & mask):
            continue
        rows.append(
            f'{{"ts":{first + i // size * step},"total":{pct[total]},'
            f'"total_max":{pct[bits >> 10 & mask] if bits >> 10 & mask else pct[total]},'
            f'"mem":{pct[bits >> 20 & mask]},"load1":{load[bits >> 40 & fmask]},'
            f'"disk":{pct[bits >> 30 & mask]},'
            f'"net_rx":{rate[bits >> 53 & fmask]},"net_tx":{rate[bits >> 66 & fmask]}}}'
        )
    return rows
