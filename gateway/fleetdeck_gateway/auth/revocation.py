"""Revocation that reaches open sockets: a socket whose token is removed, rotated, expired or
changed in the token file is told to close (1008, with the reason) within a sweep interval.

HTTP requests and new sockets check the token on every use (see `auth`); this covers sockets
already open. Each gateway sweeps its own sockets against the token file it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .identity import Identity
from .peer import Peer, current_peer
from .tokenstore import TokenStore

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0


@dataclass(eq=False)
class TokenClaim:
    """One open socket's claim to its token; `on_end` is called (after `reason` is set) when the
    claim lapses."""

    identity: Identity
    on_end: Callable[[], None] | None = None
    reason: str | None = None
    peer: Peer | None = field(default_factory=current_peer)  # where the socket comes from (for the audit)


class Revocation:
    def __init__(
        self,
        tokens: TokenStore,
        interval: float = SWEEP_SECONDS,
        on_ended: Callable[[list[TokenClaim]], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._tokens = tokens
        self._interval = interval
        self._watches: set[TokenClaim] = set()
        self._on_ended = on_ended  # told of the watches each sweep ended (the audit trail)
        self._telling: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._watches)

    def watch(self, identity: Identity, on_end: Callable[[], None] | None = None) -> TokenClaim:
        """Start watching the token a socket was opened with; `on_end` closes the socket."""
        watch = TokenClaim(identity, on_end)
        self._watches.add(watch)
        return watch

    def forget(self, watch: TokenClaim) -> None:
        self._watches.discard(watch)

    def sweep(self) -> list[TokenClaim]:
        """Re-read the token file if it changed, and end every watch whose token no longer holds."""
        self._tokens.refresh(thorough=True)
        ended: list[TokenClaim] = []
        for watch in list(self._watches):
            reason = self._tokens.ended(watch.identity)
            if reason is None:
                continue
            watch.reason = reason
            if watch.on_end is not None:
                watch.on_end()
            self._watches.discard(watch)
            ended.append(watch)
            logger.info("closing a socket of %s: %s", watch.identity.name, reason)
        return ended

    async def run(self) -> None:
        """Sweep every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                ended = self.sweep()
            except Exception:
                logger.exception("token sweep failed; trying again in %.0f s", self._interval)
                continue
            if ended and self._on_ended is not None:
                # Apart from the sweep, so a slow broker never delays the next one.
                task = asyncio.create_task(self._on_ended(ended), name="revocation-ended")
                self._telling.add(task)
                task.add_done_callback(self._telling.discard)
