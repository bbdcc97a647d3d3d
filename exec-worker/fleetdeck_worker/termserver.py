"""The worker's terminals: take open requests from the queue (each goes to one worker), admit
them, run each session, pass each gateway's input, resizes, acknowledgements and closes to its
session, and beat: gateways learn the worker lives, and a terminal whose gateway falls silent ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pydantic import ValidationError

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import GAP, Broker, BrokerUnavailable
from fleetdeck_common.broker.retry import Stopped, persist
from fleetdeck_common.service import wait_or_stop
from fleetdeck_common.terms.store import TermStore, worker_channel
from fleetdeck_common.terms.wire import BEAT_SECONDS, LOST_AFTER, TermMessage, TermRequest

from .settings import WorkerSettings
from .sshlogin import SshOptions
from .termadmission import TermAdmission
from .termsession import TermSession
from .worker import Worker

logger = logging.getLogger(__name__)

GATEWAY_LOST_AFTER = LOST_AFTER + 3  # the gateway's beats, with room for a slow sweep


class TermServer:
    def __init__(
        self,
        settings: WorkerSettings,
        store: TermStore,
        admission: TermAdmission,
        options: SshOptions,
    ) -> None:
        self.name = settings.worker_name
        self._settings = settings
        self._store = store
        self._admission = admission
        self._options = options
        self.sessions: dict[str, TermSession] = {}
        self._heard: dict[str, float] = {}  # terminal -> when its gateway last beat for it
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve terminals until `stop` is set; then every terminal ends, saying why."""
        try:
            await persist(
                "creating the terminal queue's worker group", self._store.ensure_queue, logger, stop
            )
        except Stopped:
            return
        helpers = [asyncio.create_task(self._listen()), asyncio.create_task(self._beat())]
        try:
            await self._consume(stop)
        finally:
            for session in list(self.sessions.values()):
                session.close(f"the exec worker {self.name} is shutting down")
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if len(self.sessions) >= self._settings.max_terms:
                await wait_or_stop(stop, 0.2)
                continue
            try:
                entries = await self._store.take(self.name, block=1.0)
            except BrokerUnavailable as exc:
                logger.warning("cannot read terminal requests (%s); will keep trying", exc)
                await wait_or_stop(stop, 1.0)
                continue
            for entry in entries:
                try:
                    await self._start(entry.id, dict(entry.fields))
                except BrokerUnavailable as exc:
                    logger.warning("could not start terminal from entry %s (%s)", entry.id, exc)

    async def _start(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            request = TermRequest.model_validate_json(fields.get("request", ""))
        except ValidationError:
            logger.error("terminal queue entry %s is not a terminal request; dropping it", entry_id)
            return
        reason = await self._admission.refusal(request, fields.get("sig"), entry_id)
        if reason is not None:
            await self._admission.refuse(request, reason)
            refused = TermMessage(k="closed", term=request.term, reason=f"refused by the worker: {reason}")
            await self._store.to_gateway(request.gateway, refused)
            return
        session = TermSession(request, self._store, self._options, self._settings.term_record_limit)
        self.sessions[request.term] = session
        self._heard[request.term] = time.monotonic()
        await self._store.to_gateway(
            request.gateway, TermMessage(k="taken", term=request.term, sender=self.name)
        )
        task = asyncio.create_task(self._run(session), name=f"term-{request.term}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session: TermSession) -> None:
        try:
            await session.run()
        except Exception:
            logger.exception("terminal %s failed on this worker", session.id)
        finally:
            self.sessions.pop(session.id, None)
            self._heard.pop(session.id, None)

    async def _listen(self) -> None:
        channel = worker_channel(self.name)
        while True:
            try:
                async with self._store.listen(channel) as events:
                    async for event in events:
                        if event is GAP:
                            continue  # a lost keystroke cannot be told apart; the beats still hold
                        try:
                            self._heard_message(TermMessage.decode(event.data))
                        except ValidationError:
                            logger.warning("ignored a malformed terminal message on %s", channel)
            except BrokerUnavailable as exc:
                logger.warning("terminal channel unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    def _heard_message(self, message: TermMessage) -> None:
        if message.k == "beat":
            now = time.monotonic()
            for term in message.terms or ():
                if term in self._heard:
                    self._heard[term] = now
            return
        session = self.sessions.get(message.term)
        if session is None:
            return
        if message.k == "input" and message.data:
            session.input(message.data)
        elif message.k == "resize" and message.cols and message.rows:
            session.resize(message.cols, message.rows)
        elif message.k == "ack" and message.n:
            session.ack(message.n)
        elif message.k == "close":
            session.close(message.reason or "closed by the gateway")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            now = time.monotonic()
            by_gateway: dict[str, list[str]] = {}
            for term, session in list(self.sessions.items()):
                if now - self._heard.get(term, now) > GATEWAY_LOST_AFTER:
                    session.close("the gateway serving this terminal stopped answering")
                    continue
                by_gateway.setdefault(session.request.gateway, []).append(term)
            for gateway, terms in by_gateway.items():
                with contextlib.suppress(BrokerUnavailable):
                    await self._store.to_gateway(
                        gateway, TermMessage(k="beat", sender=self.name, terms=terms)
                    )


async def serve_terms(settings: WorkerSettings, broker: Broker, stop: asyncio.Event, worker: Worker) -> None:
    """The worker's terminals, on its SSH options and connection pool, until `stop` is set."""
    store = TermStore(broker, settings.term_keep)
    audit = AuditStore(broker, 100_000_000)  # the gateway trims the trail; a worker never does
    admission = TermAdmission(
        store, audit, settings.target_policy(), settings.job_key(), settings.previous_job_key()
    )
    await TermServer(settings, store, admission, worker.ssh).run(stop)
