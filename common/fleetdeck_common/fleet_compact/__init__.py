"""Compact `fleet` frames (protocol v1.2, `fleet_format: "compact"`): binary, values to 0.1, host
names and labels as a dictionary sent once and again on change, then only what changed. Pure.

Layout (docs/protocol.md has it for client authors). Every count, length, id and value is an
unsigned LEB128 varint; a string is its UTF-8 byte length, then the bytes.

    version (1 byte, VERSION)   flags (1 byte: bit 0 full)   ts (float64, little-endian)
    strings: count, then each string         the label keys and values this frame's definitions use
    definitions: count, then each: id, name, label count, then (key index, value index) pairs
    entries: count, then each (ids ascending): id minus the previous entry's id (the first: id + 1),
             mask (1 byte: bit 0 online; bits 1-4: total, mem, load1, disk follow), those values
    forgotten: count, then each host name

A value is 0 for null, else 1 + its tenths (x * 10 rounded half up; below 0 sent as 0). A full
frame replaces everything the decoder held. In other frames a value left out of an entry is the
one the decoder already holds; a host newly defined starts offline with every value null.
"""

from .decoder import Decoder
from .encoder import Encoder, Entry
from .layout import VERSION, CompactFrameError, code

__all__ = ["VERSION", "CompactFrameError", "Decoder", "Encoder", "Entry", "code"]
