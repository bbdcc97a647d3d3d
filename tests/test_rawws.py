"""The test helper that reads WebSocket frames off a raw socket (tests/support/rawws.py)."""

from __future__ import annotations

import struct

import pytest

from tests.support.rawws import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT, WsFrame, parse_frames

TEXT = b"\x81\x05hello"  # FIN, text, 7-bit length
PING = b"\x89\x04\x01\x02\x03\x04"  # FIN, ping with a 4-byte payload
MEDIUM = b"\x82\x7e\x01\x00" + bytes(range(256))  # FIN, binary, 16-bit length 256
LARGE = b"\x82\x7f" + (70_000).to_bytes(8, "big") + b"z" * 70_000  # FIN, binary, 64-bit length
CLOSE = b"\x88\x18\x03\xf3keepalive ping timeout"  # FIN, close 1011 with a reason
FIRST_PART = b"\x01\x03abc"  # no FIN: a text message continues in the next frame
LAST_PART = b"\x80\x02de"  # FIN, continuation
STREAM = TEXT + PING + MEDIUM + LARGE + FIRST_PART + LAST_PART + CLOSE
EXPECTED = [
    WsFrame(True, OP_TEXT, b"hello"),
    WsFrame(True, OP_PING, b"\x01\x02\x03\x04"),
    WsFrame(True, OP_BINARY, bytes(range(256))),
    WsFrame(True, OP_BINARY, b"z" * 70_000),
    WsFrame(False, OP_TEXT, b"abc"),
    WsFrame(True, OP_CONTINUATION, b"de"),
    WsFrame(True, OP_CLOSE, b"\x03\xf3keepalive ping timeout"),
]


def test_every_length_form_and_opcode_is_read() -> None:
    frames, rest = parse_frames(STREAM)
    assert frames == EXPECTED and rest == b""
    assert [f.opcode for f in frames] == [0x1, 0x9, 0x2, 0x2, 0x1, 0x0, 0x8]
    assert frames[-1].close_code == 1011 and frames[0].close_code is None


# Every cut, except inside the 70 000 payload bytes of LARGE (one cut there is enough).
_LARGE_BODY = range(len(TEXT + PING + MEDIUM) + 11, len(TEXT + PING + MEDIUM + LARGE))
CUTS = [cut for cut in range(1, len(STREAM)) if cut not in _LARGE_BODY] + [_LARGE_BODY[1000]]


def test_a_frame_cut_anywhere_is_left_for_later() -> None:
    for cut in CUTS:
        frames, rest = parse_frames(STREAM[:cut])
        assert frames == EXPECTED[: len(frames)]
        assert len(frames) < len(EXPECTED)
        more, rest = parse_frames(rest + STREAM[cut:])
        assert frames + more == EXPECTED and rest == b""


def test_the_byte_0x89_inside_a_payload_is_not_a_ping() -> None:
    payload = b"\x89\x00" * 10
    frames, rest = parse_frames(b"\x82" + struct.pack("!B", len(payload)) + payload)
    assert [f.opcode for f in frames] == [OP_BINARY] and rest == b""


def test_masked_client_frames_are_unmasked() -> None:
    mask = b"\x37\xfa\x21\x3d"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(b"Hello"))
    frames, _rest = parse_frames(b"\x81\x85" + mask + masked)
    assert frames == [WsFrame(True, OP_TEXT, b"Hello")]


def test_reserved_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="reserved"):
        parse_frames(b"\xc1\x00")
