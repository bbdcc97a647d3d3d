"""uvicorn's sans-I/O WebSocket protocol, with two changes.

A connection the gateway is done with is really closed, even when the peer has stopped reading.
uvicorn ends a connection with `transport.close()`, which first waits for the buffered bytes to
be written. A peer that stopped reading never takes them, so the socket and its file descriptor
stay open for as long as the peer keeps the TCP connection (the close frame queued behind the
same bytes never goes out either, and keep-alive pings stop once the transport is closing), and
when it is uvicorn that gave up (no pong in time) the application is not even told. Here a
connection still holding unsent bytes `ABORT_AFTER` seconds after either end is aborted.

The kernel's send buffer is capped (`FLEETDECK_WS_SEND_BUFFER`). Left to itself Linux grows it
to megabytes for a peer that reads slowly: a few seconds of stale `fleet` frames the outbox's
latest-wins can no longer replace, and kernel memory (outside the gateway's RSS) held for every
peer that stopped reading.
"""

from __future__ import annotations

import socket
from asyncio import BaseTransport
from contextlib import suppress

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

ABORT_AFTER = 10.0  # as long as uvicorn gives the closing handshake: a slow but live peer gets it


class WebSocketProtocol(WebSocketsSansIOProtocol):
    send_buffer = 0  # bytes; 0 leaves the kernel's own sizing

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if self.send_buffer and sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self.loop.call_later(ABORT_AFTER, self._abort_if_unflushed)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self.loop.call_later(ABORT_AFTER, self._abort_if_unflushed)

    def _abort_if_unflushed(self) -> None:
        if self.transport.get_write_buffer_size() > 0:
            self.logger.info("aborting a WebSocket connection whose peer has stopped reading")
            self.transport.abort()


def protocol_with(send_buffer: int) -> type[WebSocketProtocol]:
    """The protocol class uvicorn is given, with the kernel send buffer it sets on each socket."""
    return type("WebSocketProtocol", (WebSocketProtocol,), {"send_buffer": send_buffer})
