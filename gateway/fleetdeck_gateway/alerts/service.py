"""Alerts as the rest of the gateway sees them: the rules in use, what fires, silences made and
expired (audited), and the background work (evaluating, reloading, keeping the view fresh)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from typing import Any

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import ProtocolError

from ..auth.identity import Identity
from ..services.audittrail import AuditTrail
from .evaluator import AlertEvaluator
from .rulebook import RuleBook
from .silences import KEEP_EXPIRED_SECONDS, Silence, SilenceRequest, make_silence
from .store import AlertStore
from .view import AlertsView

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3600.0


class Alerting:
    def __init__(
        self,
        store: AlertStore,
        rulebook: RuleBook,
        view: AlertsView,
        evaluator: AlertEvaluator,
        audit: AuditTrail,
        delivery_error: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rulebook = rulebook
        self.view = view
        self.evaluator = evaluator
        self._audit = audit
        self._delivery_error = delivery_error
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        with contextlib.suppress(BrokerUnavailable):  # what fires, before the first client asks
            await self.view.refresh()
        self._tasks = [asyncio.create_task(self.view.run(), name="alerts-view")]
        if not self.rulebook.configured:
            return  # shows what other gateways evaluate, and never takes the lease with no rules
        self._tasks += [
            asyncio.create_task(self.rulebook.watch(), name="alert-rules"),
            asyncio.create_task(self.evaluator.run(), name="alert-evaluator"),
            asyncio.create_task(self._sweeping(), name="alert-silences"),
        ]
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.rulebook.request_reload)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.rulebook.configured:
            await self.evaluator.release()
        self._tasks = []

    def summary(self) -> dict[str, Any]:
        """What `GET /api/alerts` answers."""
        return {
            "firing": [a.model_dump() for a in self.view.firing()],
            "recent": [a.model_dump() for a in self.view.recent()],
            "delivery_error": self._delivery_error(),
        }

    def rules(self) -> dict[str, Any]:
        """What `GET /api/alerts/rules` answers: the rules in use, and a bad reloaded file's error."""
        return self.rulebook.describe()

    def frame(self) -> str:
        """The `alerts` frame a client gets on subscribing: what fires now."""
        return self.view.frame()

    def firing_counts(self) -> dict[tuple[str, str], int]:
        """Alerts firing now by (rule, severity), every rule in use listed (0 when none fires)."""
        counts: dict[tuple[str, str], int] = {(r.name, r.severity): 0 for r in self.rulebook.rules}
        counts.update(self.view.counts())
        return counts

    def labels(self, key: str, value: str) -> list[str]:
        """`@alert=NAME` for the target grammar: the hosts where rule NAME fires now."""
        return self.view.hosts_firing(value)

    def silences(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [s.listed(now) for s in self.view.silences if now - s.until < KEEP_EXPIRED_SECONDS]

    async def silence(self, who: Identity, request: SilenceRequest) -> Silence:
        """Make a silence (operators); ProtocolError with a sentence if it cannot be made."""
        try:
            if not who.is_operator:
                raise ProtocolError("forbidden", "silencing alerts needs the operator role")
            try:
                made = make_silence(request, who.name, self._clock(), self.rulebook.names())
            except ValueError as exc:
                raise ProtocolError("bad_request", str(exc)) from None
        except ProtocolError as exc:
            await self._audit.silence(who, "silence", refusal=exc.message)
            raise
        await self.store.save_silence(made)
        self.view.silence_saved(made)
        await self._audit.silence(who, "silence", made)
        logger.info(
            "alerts silenced by %s until %.0f: rule %s, targets %s",
            who.name,
            made.until,
            made.rule,
            made.targets,
        )
        return made

    async def unsilence(self, who: Identity, silence_id: str) -> Silence:
        """Expire a silence now (operators); ProtocolError if there is no such silence."""
        found = next((s for s in await self.store.silences() if s.id == silence_id), None)
        try:
            if not who.is_operator:
                raise ProtocolError("forbidden", "expiring a silence needs the operator role")
            if found is None:
                raise ProtocolError("not_found", f"no silence {silence_id[:40]!r}")
        except ProtocolError as exc:
            await self._audit.silence(who, "unsilence", silence_id=silence_id[:40], refusal=exc.message)
            raise
        # Rounded down: rounded up, it would still be in effect for a fraction of a millisecond.
        now = math.floor(self._clock() * 1000) / 1000
        expired = found.model_copy(update={"until": min(found.until, now)})
        await self.store.save_silence(expired)
        self.view.silence_saved(expired)
        await self._audit.silence(who, "unsilence", expired)
        return expired

    async def _sweeping(self) -> None:
        """Drop silences that ended more than a day ago, hourly."""
        while True:
            with contextlib.suppress(BrokerUnavailable):
                now = self._clock()
                for old in await self.store.silences():
                    if now - old.until > KEEP_EXPIRED_SECONDS:
                        await self.store.drop_silence(old.id)
            await asyncio.sleep(SWEEP_SECONDS)
