"""`--churn-lifetime`: clients that connect, follow `fleet` a while, leave and come back."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .clients import Clients, Session
from .frames import histogram_add, how_it_ended, open_socket

PAUSE_S = 1.0  # between a client's sessions
ABORT_SHARE = 0.5  # of the sessions a client ends by dropping the TCP connection, not closing
SLOW_HANDSHAKE_S = 30.0  # handshakes slower than this are counted apart


class ChurningClients(Clients):
    """Clients whose sessions last 0.5 to 1.5 `--churn-lifetime` (the first 0 to 1.5), until close."""

    async def run(self, index: int, gate: asyncio.Semaphore, closing: asyncio.Event) -> None:
        rng = random.Random(index)
        mean = self.args.churn_lifetime
        life = rng.uniform(0.0, 1.5 * mean)
        first = True  # the client's first session or failed connect counts it ready or failed
        while not closing.is_set():
            started = time.monotonic()
            try:
                async with gate:
                    socket = await open_socket(self.url, self.args.token, 60)
            except (OSError, TimeoutError, ConnectionClosed, ValueError) as exc:
                self.stats.connect_failed[type(exc).__name__] += 1
                if first:
                    self.counted(False, type(exc).__name__)
            else:
                session, handshake = Session(index, counts=first), time.monotonic() - started
                self.stats.connects += 1
                histogram_add(self.stats.handshake, handshake)
                self.stats.slow_handshakes += handshake > SLOW_HANDSHAKE_S
                await self._session(socket, session, life, rng)
                if first and not session.had_frame:
                    self.counted(False, "closed before its first frame")
            first = False
            life = rng.uniform(0.5 * mean, 1.5 * mean)
            await asyncio.sleep(PAUSE_S)

    async def _session(
        self, socket: ClientConnection, session: Session, life: float, rng: random.Random
    ) -> None:
        """Follow `fleet` for `life` s, then leave (closing, or dropping the connection)."""
        self.sockets[session.index] = socket
        reader = asyncio.create_task(self.follow(socket, session))
        try:
            await asyncio.wait_for(asyncio.shield(reader), life)
        except TimeoutError:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if rng.random() < ABORT_SHARE:
                socket.transport.abort()
                self.stats.closed_abort += 1
            else:
                with contextlib.suppress(Exception):
                    await socket.close()
                self.stats.closed_clean += 1
        except (OSError, ConnectionClosed) as exc:
            self.stats.server_closed[how_it_ended(exc)] += 1
        finally:
            del self.sockets[session.index]
