"""The one place the gateway is wired: every part is built here and handed its collaborators and
callbacks at construction; nothing is patched in afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import Broker
from fleetdeck_common.chatstore import ChatStore
from fleetdeck_common.filestore import FileStore
from fleetdeck_common.history import HistoryStore
from fleetdeck_common.hoststore import HostStore
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.messages import Alert, Job
from fleetdeck_common.summaries import Summary
from fleetdeck_common.targets.labels import ALERT_KEY
from fleetdeck_common.terms.store import TermStore

from .alerts.evaluator import AlertEvaluator
from .alerts.rulebook import RuleBook
from .alerts.senders import build_senders
from .alerts.service import Alerting
from .alerts.sink import delivery_error
from .alerts.store import AlertStore
from .alerts.view import AlertsView
from .auth.authenticator import Authenticator
from .auth.loginguard import LoginThrottle
from .auth.revocation import Revocation
from .auth.sessions import SessionStore
from .auth.tokenstore import TokenStore
from .feeds.execqueue import QueueWatch
from .feeds.fleet import FleetView
from .feeds.hosthistory import HistoryCache
from .feeds.hosttable import HostTable
from .feeds.jobresults import JobWatches
from .feeds.presence import PresenceSync
from .feeds.relay import Relay
from .feeds.samples import LiveSamples
from .history.reader import HistoryReader
from .metrics import GatewayMetrics
from .services.audittrail import AuditTrail
from .services.chat import ChatService
from .services.jobservice import JobService
from .settings import GatewaySettings
from .state import Gateway
from .terms.link import TermLink
from .terms.service import TermService
from .ws.clients import Clients


def build_gateway(
    settings: GatewaySettings,
    broker: Broker,
    tokens: TokenStore,
    login_clock: Callable[[], float] = time.monotonic,
) -> Gateway:
    """Every part of one gateway process, wired; `Gateway.start` sets it running. RulesError if
    FLEETDECK_ALERT_RULES names a bad file."""
    sessions = SessionStore(broker, settings.session_ttl)
    audit = AuditTrail(AuditStore(broker, settings.audit_keep))
    metrics = GatewayMetrics(lambda: float(broker.reconnects))
    jobs = JobStore(broker)
    files = FileStore(broker)
    policy = settings.target_policy()
    hosts = HostStore(broker)

    clients = Clients(metrics)
    watches = JobWatches(jobs, clients)
    table = HostTable()
    fleet = FleetView(table, clients)
    presence = PresenceSync(hosts, table, clients, settings.forget_after, on_change=fleet.changed)
    long_history = HistoryReader(HistoryStore(broker, settings.tiers()), boot_of=presence.boot_of)
    history = HistoryCache(long_history.recent)

    def older_agents_sample(summary: Summary) -> None:
        presence.observe(summary)
        fleet.observe(summary)

    samples = LiveSamples(broker, clients, history, presence, older_agents_sample)
    queue = QueueWatch(jobs, clients, policy)

    def count_queued(job: Job) -> None:
        metrics.jobs_submitted.inc()

    alert_store = AlertStore(broker)
    rulebook = RuleBook(settings.alert_rules, on_reload=audit.alert_rules)
    alerts_view = AlertsView(alert_store, clients, table.entries, rulebook.names)
    senders = build_senders(settings, broker)
    evaluator = AlertEvaluator(
        alert_store,
        owner=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        rules=lambda: rulebook.rules,
        known=table.entries,
        latest=fleet.latest,
        sink=senders,
        version=lambda: table.version,
    )
    alerts = Alerting(alert_store, rulebook, alerts_view, evaluator, audit, lambda: delivery_error(senders))

    def selected_by(key: str, value: str) -> list[str]:
        """`@key=value` in exec targets: the online hosts so labelled, or where rule `value` fires."""
        if key != ALERT_KEY:
            return table.addresses_with(key, value)
        return [table.address_of(host) or host for host in alerts.labels(key, value)]

    def alert_heard(alert: Alert) -> None:
        alerts_view.observe(alert)

    terms = TermService(
        TermStore(broker, settings.term_keep),
        policy,
        audit,
        f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        lambda: len(queue.workers),
        labels=selected_by,
        address_of=table.address_of,
        key=settings.job_key(),
        max_per_user=settings.term_max_per_user,
        idle_timeout=settings.term_idle_timeout,
    )

    return Gateway(
        settings=settings,
        broker=broker,
        tokens=tokens,
        sessions=sessions,
        auth=Authenticator(tokens, sessions, settings.allowed_origins),
        login_throttle=LoginThrottle(settings.login_failures, clock=login_clock),
        revocation=Revocation(tokens, on_ended=audit.sessions_closed),
        audit=audit,
        metrics=metrics,
        clients=clients,
        watches=watches,
        presence=presence,
        fleet=fleet,
        history=history,
        samples=samples,
        long_history=long_history,
        relay=Relay(
            broker,
            clients,
            watches,
            presence,
            fleet,
            history,
            samples,
            on_job=queue.observe,
            fleet_tick=settings.fleet_tick,
            on_alert=alert_heard,
        ),
        queue=queue,
        jobs=JobService(
            jobs,
            policy,
            selected_by,
            settings.job_queue_timeout,
            audit=audit,
            on_queued=count_queued,
            key=settings.job_key(),
            address_of=table.address_of,
            files=files,
        ),
        files=files,
        chat=ChatService(ChatStore(broker)),
        alert_senders=senders,
        alerts=alerts,
        terms=terms,
        term_link=TermLink(terms),
    )
