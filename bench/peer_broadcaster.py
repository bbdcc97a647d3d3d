"""Peer (b) of the fan-out benchmark: Starlette + encode/broadcaster (Redis backend) under uvicorn.

    python -m bench.peer_broadcaster --port PORT --redis redis://127.0.0.1:P/0

The WebSocket endpoint of broadcaster's own chat example: each socket subscribes to the channel
and sends every event as it comes, while a receive loop notices the client leaving (with one
subscription held from the start: see `hold`). Served by
uvicorn with the same WebSocket implementation and settings as the gateway (websockets-sansio,
no compression, pings every 20 s), on 127.0.0.1 only; exits on SIGTERM or after `--max-seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import anyio
import uvicorn
from broadcaster import Broadcast  # type: ignore[import-not-found,unused-ignore]
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from fleetdeck_common import topics

from .cli import PEER, parser


def create_app(redis_url: str) -> Starlette:
    broadcast = Broadcast(redis_url)

    async def samples(websocket: WebSocket) -> None:
        await websocket.accept()
        async with anyio.create_task_group() as group:

            async def receive() -> None:
                async for _ in websocket.iter_text():  # the client's `subscribe` is ignored
                    pass
                group.cancel_scope.cancel()

            async def send() -> None:
                async with broadcast.subscribe(channel=topics.CPU_CHANNEL) as subscriber:
                    # (broadcaster's annotations allow None here; it never yields one)
                    async for event in subscriber:  # type: ignore[union-attr,unused-ignore]
                        await websocket.send_text(event.message)  # type: ignore[union-attr,unused-ignore]

            group.start_soon(receive)
            group.start_soon(send)

    async def hold(listening: asyncio.Event) -> None:
        """One subscription for the server's life, drained: broadcaster 0.3.1 keeps only one of the
        subscribers that come at the same moment as a channel's first (each replaces the channel's
        set), and its Redis backend can miss its first SUBSCRIBE; so it subscribes again until a
        sample arrives, before any client. It costs one queue hop per sample."""
        while not listening.is_set():
            async with broadcast.subscribe(channel=topics.CPU_CHANNEL) as held:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(held.get(), 5)
                    listening.set()
                    async for _ in held:  # type: ignore[union-attr,unused-ignore]
                        pass

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broadcast.connect()
        listening = asyncio.Event()
        holder = asyncio.create_task(hold(listening))
        try:
            await listening.wait()
            yield
        finally:
            holder.cancel()
            await broadcast.disconnect()

    return Starlette(routes=[WebSocketRoute("/ws", samples)], lifespan=lifespan)


def main() -> None:
    args = parser(__doc__ or "", PEER, common=False).parse_args()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(args.redis),
            host="127.0.0.1",
            port=args.port,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            log_level="warning",
            access_log=False,
        )
    )
    timer = threading.Timer(args.max_seconds, lambda: setattr(server, "should_exit", True))
    timer.daemon = True
    timer.start()
    server.run()


if __name__ == "__main__":
    main()
