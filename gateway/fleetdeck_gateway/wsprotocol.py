"""uvicorn's sans-I/O WebSocket protocol, with one change: a connection the gateway is done with
is really closed, even when the peer has stopped reading.

uvicorn ends a connection with `transport.close()`, which first waits for the buffered bytes to
be written. A peer that stopped reading never takes them, so the socket and its file descriptor
stay open for as long as the peer keeps the TCP connection (the close frame queued behind the
same bytes never goes out either, and keep-alive pings stop once the transport is closing), and
when it is uvicorn that gave up (no pong in time) the application is not even told. Here a
connection still holding unsent bytes `ABORT_AFTER` seconds after either end is aborted.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

ABORT_AFTER = 10.0  # as long as uvicorn gives the closing handshake: a slow but live peer gets it


class WebSocketProtocol(WebSocketsSansIOProtocol):
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
