"""Terminals from the gateway's side: who may open one where, queueing the signed request for a
worker, relaying input, resizes and closes to that worker and its output to the socket, and
ending terminals (closed, socket gone, idle, worker silent) with a reason a person understands.
Every open attempt and every end goes to the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.jobs.signing import JobKey, sign
from fleetdeck_common.messages import (
    ProtocolError,
    TermClose,
    TermClosed,
    TermInput,
    TermOpen,
    TermOpened,
    TermResize,
    dump,
)
from fleetdeck_common.targets import KnownAddresses, LabelLookup, TargetError, TargetPolicy, expand_targets
from fleetdeck_common.terms.store import TermStore
from fleetdeck_common.terms.wire import LOST_AFTER, TermMessage, TermRequest

from ..auth.identity import Identity
from ..services.audittrail import AuditTrail
from ..ws.clients import Client
from . import audit
from .session import Term

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0  # seconds a request may wait for a worker to take it
# A terminal counts toward its user's limit on every gateway for this long after its gateway last
# renewed it (at each beat): a gateway that dies stops holding its users' places.
HOLD_SECONDS = 2 * LOST_AFTER


class TermService:
    def __init__(
        self,
        store: TermStore,
        policy: TargetPolicy,
        trail: AuditTrail,
        gateway_id: str,
        workers_alive: Callable[[], int],
        labels: LabelLookup | None = None,
        address_of: Callable[[str], str | None] = lambda host: None,
        key: JobKey | None = None,
        max_per_user: int = 8,
        idle_timeout: float = 900.0,
    ) -> None:
        self.store = store
        self._policy = policy
        self._trail = trail
        self.gateway_id = gateway_id  # names this gateway's channel: workers send its terminals' output there
        self._workers_alive = workers_alive
        self._labels = labels
        self._address_of = address_of
        self._key = key
        self._max_per_user = max_per_user
        self._idle_timeout = idle_timeout
        self.terms: dict[str, Term] = {}
        self._ending: set[str] = set()  # ended here, still counted in the broker until released
        self._background: set[asyncio.Task[None]] = set()

    # --- the client's frames -------------------------------------------------------------------

    async def open(self, client: Client, frame: TermOpen) -> None:
        """Check and queue a `term_open`; `term_opened` follows when the worker has the PTY."""
        who = client.identity
        term_id: str | None = None
        try:
            request = self._request(who, frame)
            term_id = request.term
            await self._claim(who.name, request.term)
            try:
                await self.store.queue(request, sign(self._key, request) if self._key is not None else None)
            except BrokerUnavailable:
                with contextlib.suppress(BrokerUnavailable):
                    await self.store.release(who.name, request.term)
                raise
        except ProtocolError as exc:
            await audit.opened(self._trail, who, frame.host, None, exc)
            raise
        self.terms[request.term] = Term(request.term, client, request.host, frame.cols, frame.rows, frame.ref)
        await audit.opened(self._trail, who, request.host, term_id)
        logger.info("terminal %s on %s asked for by %s", term_id, request.host, who.name)

    async def _claim(self, user: str, term: str) -> None:
        """Count the terminal toward its user's limit, on every gateway; refused past the limit."""
        now = time.time()
        live = await self.store.claim(user, term, now + HOLD_SECONDS, now)
        others = [other for other in live if other != term and other not in self._ending]
        if len(others) >= self._max_per_user:
            with contextlib.suppress(BrokerUnavailable):
                await self.store.release(user, term)
            raise ProtocolError(
                "forbidden",
                f"{user} has {len(others)} terminals open, the most allowed (FLEETDECK_TERM_MAX_PER_USER); "
                "close one first",
            )

    def _request(self, who: Identity, frame: TermOpen) -> TermRequest:
        if not who.is_operator:
            raise ProtocolError("forbidden", "opening a terminal needs the operator role")
        named = KnownAddresses(self._address_of)
        try:
            hosts = expand_targets(frame.host, self._policy, self._labels, named)
        except TargetError as exc:
            raise ProtocolError("invalid_targets", f"host: {exc}") from None
        if len(hosts) != 1:
            raise ProtocolError(
                "invalid_targets", f"host must name exactly one host; {frame.host[:100]!r} names {len(hosts)}"
            )
        refusal = who.exec_refusal(hosts)
        if refusal is not None:
            raise ProtocolError("forbidden", refusal)
        if self._workers_alive() == 0:
            raise ProtocolError("unavailable", "no exec worker is running to open the terminal; start one")
        now = round(time.time(), 3)
        return TermRequest(
            term=secrets.token_hex(8),
            host=named.names.get(hosts[0], hosts[0]),  # `vm`, reached at the address it gave
            address=self._address_of(hosts[0]) or hosts[0],
            user=who.name,
            scope=who.scope,
            cols=frame.cols,
            rows=frame.rows,
            gateway=self.gateway_id,
            ts=now,
            queued_until=round(now + OPEN_TIMEOUT, 3),
        )

    def _mine(self, client: Client, term_id: str, opened: bool = True) -> Term:
        term = self.terms.get(term_id)
        if term is None or term.client is not client:
            raise ProtocolError("not_found", f"no open terminal {term_id!r} on this connection")
        if opened and (not term.opened or term.worker is None):
            raise ProtocolError("bad_request", f"terminal {term_id!r} is still opening")
        return term

    async def input(self, client: Client, frame: TermInput) -> None:
        term = self._mine(client, frame.term)
        term.last_active = time.monotonic()
        assert term.worker is not None
        await self.store.to_worker(term.worker, TermMessage(k="input", term=term.id, data=frame.data))

    async def resize(self, client: Client, frame: TermResize) -> None:
        term = self._mine(client, frame.term)
        term.cols, term.rows = frame.cols, frame.rows
        assert term.worker is not None
        await self.store.to_worker(
            term.worker, TermMessage(k="resize", term=term.id, cols=frame.cols, rows=frame.rows)
        )

    async def close(self, client: Client, frame: TermClose) -> None:
        term = self._mine(client, frame.term, opened=False)
        closed = self._end(term, None, f"closed by {client.identity.name}")
        # Its place is free on every gateway before the user hears it is closed.
        with contextlib.suppress(BrokerUnavailable):
            await self.store.release(client.identity.name, term.id)
        client.outbox.put(closed)

    def disconnected(self, client: Client, reason: str) -> list[str]:
        """End the socket's terminals (its token ended, or it closed); their `term_closed` frames,
        for a socket that can still be told."""
        return [self._end(term, None, reason) for term in list(self.terms.values()) if term.client is client]

    # --- what workers say ------------------------------------------------------------------------

    def heard(self, message: TermMessage) -> None:
        """A message on this gateway's channel."""
        if message.k == "beat":
            now = time.monotonic()
            held = set(message.terms or ())
            for term in self.terms.values():
                if term.worker == message.sender and term.id in held:
                    term.last_beat = now
            return
        found = self.terms.get(message.term)
        if found is None:
            return  # ended here already
        term = found
        if message.k == "taken":
            term.worker = message.sender
            term.last_beat = time.monotonic()
        elif message.k == "opened":
            term.opened = True
            term.last_active = time.monotonic()
            opened = TermOpened(term=term.id, host=term.host, cols=term.cols, rows=term.rows, ref=term.ref)
            term.send(dump(opened))
        elif message.k == "output" and message.data:
            term.output(message.data, self._acker(term))
        elif message.k == "closed":
            frame = self._end(term, message.exit_code, message.reason or "the terminal ended", by_worker=True)
            term.send(frame)

    def _acker(self, term: Term) -> Callable[[int], Awaitable[None]]:
        async def ack(n: int) -> None:
            if term.worker is not None and term.id in self.terms:
                with contextlib.suppress(BrokerUnavailable):
                    await self.store.to_worker(term.worker, TermMessage(k="ack", term=term.id, n=n))

        return ack

    # --- ends --------------------------------------------------------------------------------------

    def _end(self, term: Term, exit_code: int | None, reason: str, by_worker: bool = False) -> str:
        """Forget the terminal, tell its worker (unless the end is the worker's), record and audit
        the end; the `term_closed` frame to send."""
        self.terms.pop(term.id, None)
        self._ending.add(term.id)
        term.flush()
        logger.info("terminal %s on %s ended: %s", term.id, term.host, reason)
        self._spawn(self._ended(term, exit_code, reason, tell_worker=not by_worker))
        ref = None if term.opened else term.ref
        return dump(TermClosed(term=term.id, exit_code=exit_code, reason=reason, ref=ref))

    async def _ended(self, term: Term, exit_code: int | None, reason: str, tell_worker: bool) -> None:
        try:
            if tell_worker and term.worker is not None:
                await self.store.to_worker(term.worker, TermMessage(k="close", term=term.id, reason=reason))
            await self.store.release(term.client.identity.name, term.id)
            await self.store.end(term.id, exit_code, reason, round(time.time(), 3))
        except BrokerUnavailable as exc:
            logger.warning("terminal %s: could not record its end (%s)", term.id, exc)
        finally:
            self._ending.discard(term.id)  # released, or no longer renewed: it stops counting either way
        await audit.closed(self._trail, term.client.identity.name, term.host, term.id, exit_code, reason)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def sweep(self) -> None:
        """End terminals no worker took in time, whose worker fell silent, or that sat idle."""
        now = time.monotonic()
        for term in list(self.terms.values()):
            if term.worker is None and now - term.created > OPEN_TIMEOUT:
                reason = f"no exec worker took the terminal within {OPEN_TIMEOUT:g} s"
            elif term.worker is not None and now - term.last_beat > LOST_AFTER:
                reason = f"the exec worker {term.worker} stopped answering; the terminal is lost"
            elif term.opened and now - term.last_active > self._idle_timeout:
                reason = f"idle for {self._idle_timeout:g} s (FLEETDECK_TERM_IDLE_TIMEOUT)"
            else:
                continue
            term.send(self._end(term, None, reason))

    def lost_messages(self) -> None:
        """The broker connection dropped: output may be missing, so every terminal here ends."""
        for term in list(self.terms.values()):
            reason = "the gateway lost its broker connection; the terminal's output may be incomplete"
            term.send(self._end(term, None, reason))

    async def beat(self) -> None:
        """Tell each worker which of its terminals this gateway still serves, and keep counting
        them toward their users' limits."""
        by_worker: dict[str, list[str]] = {}
        by_user: dict[str, list[str]] = {}
        for term in self.terms.values():
            by_user.setdefault(term.client.identity.name, []).append(term.id)
            if term.worker is not None:
                by_worker.setdefault(term.worker, []).append(term.id)
        for worker, terms in by_worker.items():
            await self.store.to_worker(worker, TermMessage(k="beat", sender=self.gateway_id, terms=terms))
        now = time.time()
        await self.store.renew(by_user, now + HOLD_SECONDS, now)
        for user, terms in by_user.items():
            for term_id in terms:
                if term_id not in self.terms:  # ended while being renewed: release it again
                    await self.store.release(user, term_id)

    async def stop(self) -> None:
        for term in list(self.terms.values()):
            term.send(self._end(term, None, "the gateway is shutting down"))
        await asyncio.gather(*self._background, return_exceptions=True)
