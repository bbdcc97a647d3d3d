"""Every pub/sub channel, stream and key name fleetdeck uses, and nowhere else."""

PREFIX = "fleetdeck"

# Pub/sub channels: the gateway holds one subscription to all of them.
CPU_CHANNEL = f"{PREFIX}:cpu"
CHAT_CHANNEL = f"{PREFIX}:chat"
JOBS_CHANNEL = f"{PREFIX}:jobs"
RESULTS_CHANNEL = f"{PREFIX}:results"
CONTROL_CHANNEL = f"{PREFIX}:control"
GATEWAY_CHANNELS = (CPU_CHANNEL, CHAT_CHANNEL, JOBS_CHANNEL, RESULTS_CHANNEL)

# Keys.
HOSTS_KEY = f"{PREFIX}:hosts"  # hash: host -> heartbeat JSON
CHAT_HISTORY_KEY = f"{PREFIX}:chat:history"  # capped list of chat frames
JOB_INDEX_KEY = f"{PREFIX}:jobs:recent"  # capped list of job ids, newest last
JOBS_STREAM = f"{PREFIX}:exec:jobs"  # stream of submitted jobs
WORKER_GROUP = "workers"
SESSIONS_PREFIX = f"{PREFIX}:session:"

CHAT_HISTORY_SIZE = 100
JOB_INDEX_SIZE = 500


def history_key(host: str) -> str:
    """Capped list of one host's recent CPU samples, oldest first."""
    return f"{PREFIX}:cpu:history:{host}"


def job_key(job_id: str) -> str:
    """The job's audit record (JSON)."""
    return f"{PREFIX}:job:{job_id}"


def job_results_stream(job_id: str) -> str:
    """The job's result stream: one entry per host, then one `done` entry."""
    return f"{PREFIX}:job:{job_id}:results"


def job_started_key(job_id: str) -> str:
    """Hash of hosts a worker has started the command on (so it is never run twice)."""
    return f"{PREFIX}:job:{job_id}:started"


def job_lease_key(job_id: str) -> str:
    """Which worker runs the job now; its result writes are fenced by this lease."""
    return f"{PREFIX}:job:{job_id}:lease"


def job_cancel_key(job_id: str) -> str:
    """Set when somebody cancels the job; workers check it before starting each host."""
    return f"{PREFIX}:job:{job_id}:cancel"


def session_key(session_hash: str) -> str:
    return f"{SESSIONS_PREFIX}{session_hash}"


def worker_heartbeat_key(worker: str) -> str:
    return f"{PREFIX}:worker:{worker}"
