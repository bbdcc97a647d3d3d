"""A deliberately slow WebSocket client, written by hand so nothing reads on its behalf, and a parser
for the frames it receives (RFC 6455 section 5.2), so tests can see pings and closes on the wire."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def raw_ws_that_never_reads(port: int, token: str, frame: dict[str, Any]) -> socket.socket:
    """A real WebSocket client with a tiny receive window: it sends `frame`, then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response.split(b"\r\n")[0]
    payload = json.dumps(frame).encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
    return sock


@dataclass(frozen=True)
class WsFrame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None for other frames, or a close without a code)."""
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


def parse_frames(data: bytes) -> tuple[list[WsFrame], bytes]:
    """The complete frames at the start of `data`, and the bytes of an incomplete frame after them.

    Server frames are unmasked; a masked (client) frame is unmasked too. Reserved bits must be 0.
    """
    frames: list[WsFrame] = []
    at = 0
    while True:
        if len(data) - at < 2:
            return frames, data[at:]
        first, second = data[at], data[at + 1]
        if first & 0x70:
            raise ValueError(f"reserved bits set in frame header {first:#04x}")
        header = 2
        length = second & 0x7F
        if length == 126:
            if len(data) - at < header + 2:
                return frames, data[at:]
            length = struct.unpack("!H", data[at + header : at + header + 2])[0]
            header += 2
        elif length == 127:
            if len(data) - at < header + 8:
                return frames, data[at:]
            length = struct.unpack("!Q", data[at + header : at + header + 8])[0]
            header += 8
        mask = b""
        if second & 0x80:
            if len(data) - at < header + 4:
                return frames, data[at:]
            mask = data[at + header : at + header + 4]
            header += 4
        if len(data) - at < header + length:
            return frames, data[at:]
        payload = data[at + header : at + header + length]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frames.append(WsFrame(fin=bool(first & 0x80), opcode=first & 0x0F, payload=payload))
        at += header + length


def read_until_closed(sock: socket.socket) -> list[WsFrame]:
    """Read (and never answer) until the peer closes the TCP connection; every frame it sent."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    frames, rest = parse_frames(received)
    assert rest == b"", f"the connection ended inside a frame: {rest[:32]!r}"
    return frames
