"""The layout of the job keys in the broker: the one module that names them.

Per job there is a record (the latest `job` frame), a result stream (one entry per host, then one
`done` entry: the record of truth that watchers replay), a hash of the hosts a worker has started,
a lease naming the worker that runs it, the last position written to the result stream, and a
cancel mark. Beside them: the queue every worker reads, the workers' announcements, and a capped
index of recent job ids.
"""

from __future__ import annotations

from .. import topics
from ..acl import grant

QUEUE = topics.key("exec", "jobs")  # stream of submitted jobs, read by the workers' group
WORKER_GROUP = "workers"
WORKERS = topics.key("exec", "workers")  # hash: worker name -> its latest announcement (JSON)
INDEX = topics.key("jobs", "recent")  # capped list of job ids, newest last


def record_key(job_id: str) -> str:
    return topics.key("job", job_id)


def results_key(job_id: str) -> str:
    return topics.key("job", job_id, "results")


def started_key(job_id: str) -> str:
    return topics.key("job", job_id, "started")


def lease_key(job_id: str) -> str:
    return topics.key("job", job_id, "lease")


def cancel_key(job_id: str) -> str:
    return topics.key("job", job_id, "cancel")


def written_key(job_id: str) -> str:
    """The last position written to the result stream: what makes a retried append harmless."""
    return topics.key("job", job_id, "written")


def taken_key(job_id: str) -> str:
    """The queue entry a worker with the job key first took the job from: a second entry naming
    the same job is a replay."""
    return topics.key("job", job_id, "taken")


# Who may touch them: the gateway queues, cancels, reads and expires jobs; the worker runs them.
# The gateway reads the queue only as far as EVAL asks for both on the keys a script names.
ACCESS = (
    grant(QUEUE, read=["gateway", "worker"], write=["gateway", "worker"]),
    grant(WORKERS, read=["gateway"], write=["gateway", "worker"]),
    grant(INDEX, read=["gateway"], write=["gateway"]),
    grant(topics.key("job", "*"), read=["gateway", "worker"], write=["gateway", "worker"]),
)


def kept_keys(job_id: str) -> tuple[str, ...]:
    """The keys a finished job keeps for its retention."""
    return (results_key(job_id), started_key(job_id), record_key(job_id), written_key(job_id))
