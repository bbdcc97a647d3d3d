"""`fleetdeck-worker`: one exec worker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck_common.auditstore import AuditStore
from fleetdeck_common.broker import Broker
from fleetdeck_common.filestore import FileStore
from fleetdeck_common.jobs import JobStore
from fleetdeck_common.service import service_main

from .admission import NEVER_TRIM, Admission
from .preflight import check_ssh_setup
from .settings import WorkerSettings
from .termserver import serve_terms
from .worker import Worker


async def serve(settings: WorkerSettings, broker: Broker, stop: asyncio.Event) -> None:
    store = JobStore(broker)
    key = settings.job_key()
    admission = None
    if key is not None:
        audit = AuditStore(broker, NEVER_TRIM)
        previous = settings.previous_job_key()
        admission = Admission(key, store, audit, settings.target_policy(), previous=previous)
    worker = Worker(settings, store, admission=admission, files=FileStore(broker))
    await asyncio.gather(worker.run(stop), serve_terms(settings, broker, stop, worker))


def main(argv: Sequence[str] | None = None) -> None:
    service_main(
        WorkerSettings,
        "fleetdeck-worker",
        "Run queued fleetdeck exec jobs on their hosts over SSH and report each host's result.",
        serve,
        # Healthy while the broker answered the worker's heartbeat within claim_idle seconds.
        lambda s: (s.health_file, s.claim_idle),
        argv,
        preflight=_preflight,
    )


def _preflight(settings: WorkerSettings) -> tuple[list[str], list[str]]:
    findings = check_ssh_setup(settings)
    return findings.errors, findings.warnings


if __name__ == "__main__":
    main()
