"""Peer (a) of the fan-out benchmark: a plain `websockets` broadcast server fed by one redis-py
subscriber. Every sample published on the agents' channel goes, as published, to every client.

    python -m bench.peer_websockets --port PORT --redis redis://127.0.0.1:P/0

It is what one would write in an afternoon: no auth, no topics, no per-client queue
(`websockets.broadcast` writes to every socket without waiting). It runs on uvloop like the
gateway (uvicorn picks uvloop when it is installed), listens on 127.0.0.1 only and ends on
SIGTERM or after `--max-seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from fleetdeck_common import topics

from .cli import PEER, parser


async def serve_samples(port: int, redis_url: str) -> None:
    clients: set[ServerConnection] = set()

    async def handler(websocket: ServerConnection) -> None:
        clients.add(websocket)
        try:
            async for _ in websocket:  # whatever a client sends (its `subscribe`) is ignored
                pass
        finally:
            clients.discard(websocket)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=64 * 1024):
        client = aioredis.Redis.from_url(redis_url)
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(topics.CPU_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    broadcast(clients, message["data"].decode())


def main() -> None:
    args = parser(__doc__ or "", PEER, common=False).parse_args()
    with contextlib.suppress(TimeoutError):
        uvloop.run(asyncio.wait_for(serve_samples(args.port, args.redis), args.max_seconds))


if __name__ == "__main__":
    main()
