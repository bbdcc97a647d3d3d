"""`--churn-lifetime`: clients that connect, follow `fleet` a while, leave and come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .clients import Clients
from .frames import SLOW_HANDSHAKE_S, histogram_add, how_it_ended, open_socket


class ChurningClients(Clients):
    """Clients whose sessions last 0.5 to 1.5 `--churn-lifetime` (the first 0 to 1.5), until close."""

    async def run(self, index: int, gate: asyncio.Semaphore, closing: asyncio.Event) -> None:
        rng = random.Random(index)
        mean = self.args.churn_lifetime
        first_ever = [False]  # this client's first session was followed or failed (for `ready`)
        life = rng.uniform(0.0, 1.5 * mean)
        while not closing.is_set():
            socket = await self._connect(index, gate, first_ever)
            if socket is not None:
                session = [False, True]  # [1]: a churn session (timed, not counted as ready again)
                reader = asyncio.create_task(self._session(socket, index, session))
                try:
                    await asyncio.wait_for(asyncio.shield(reader), life)
                except TimeoutError:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                    await self._leave(socket, rng)
                except (OSError, ConnectionClosed, ConnectionError) as exc:
                    self.stats.server_closed[how_it_ended(exc)] += 1
                finally:
                    self.session_opened.pop(index, None)
                    with contextlib.suppress(ValueError):
                        self.sockets.remove(socket)
                if not first_ever[0]:
                    first_ever[0] = True
                    if session[0]:
                        self.ready += 1
                        self._check_ready()
                    else:
                        self.gave_up("closed before its first frame")
            life = rng.uniform(0.5 * mean, 1.5 * mean)
            await asyncio.sleep(self.args.churn_pause)

    async def _connect(
        self, index: int, gate: asyncio.Semaphore, first_ever: list[bool]
    ) -> ClientConnection | None:
        started = time.monotonic()
        try:
            async with gate:
                socket = await open_socket(self.url, self.args.token, self.args.open_timeout)
        except (OSError, TimeoutError, ConnectionClosed, ValueError) as exc:
            self.stats.connect_failed[type(exc).__name__] += 1
            if not first_ever[0]:
                first_ever[0] = True
                self.gave_up(type(exc).__name__)
            return None
        opened = time.monotonic()
        self.stats.connects += 1
        histogram_add(self.stats.handshake, opened - started)
        self.stats.slow_handshakes += opened - started > SLOW_HANDSHAKE_S
        self.session_opened[index] = opened
        self.sockets.append(socket)
        return socket

    async def _session(self, socket: ClientConnection, index: int, session: list[bool]) -> None:
        await socket.send(json.dumps({"type": "subscribe", "topics": ["fleet", *self.also_topics]}))
        await self.read_fleet(socket, index, index % self.args.probe_every == 0, session)
        raise ConnectionError("closed by the server")

    async def _leave(self, socket: ClientConnection, rng: random.Random) -> None:
        if rng.random() < self.args.churn_abort_share:
            socket.transport.abort()
            self.stats.closed_abort += 1
        else:
            with contextlib.suppress(Exception):
                await socket.close()
            self.stats.closed_clean += 1
