"""Every pub/sub channel name fleetdeck uses, and the prefix of every key.

Keys themselves are built only by the store that owns their layout: `jobs.keys` (jobs),
`hoststore` (heartbeats and sample history), `chatstore` (chat history), `auditstore` (the audit
trail), `terms.store` (terminals) and the gateway's `sessions` (login sessions) and
`alerts.store` (alert state, silences).
"""

from .acl import channel

PREFIX = "fleetdeck"

# Pub/sub channels: the gateway holds one subscription to those it always needs
# (`GATEWAY_CHANNELS`), and one to the full samples only while someone watches them in detail.
CPU_CHANNEL = f"{PREFIX}:cpu"  # every full sample
SUMMARY_CHANNEL = f"{PREFIX}:summary"  # what the fleet view needs of them, a round trip's hosts a message
CHAT_CHANNEL = f"{PREFIX}:chat"
JOBS_CHANNEL = f"{PREFIX}:jobs"
RESULTS_CHANNEL = f"{PREFIX}:results"
CONTROL_CHANNEL = f"{PREFIX}:control"
ALERTS_CHANNEL = f"{PREFIX}:alerts"  # alert transitions, published by the evaluating gateway
# Terminals: one channel per worker (input, resizes, acknowledgements, closes from gateways) and
# one per gateway (output and ends from workers); `terms.store` names each one in these patterns.
TERM_WORKER_CHANNEL = f"{PREFIX}:term-worker:*"
TERM_GATEWAY_CHANNEL = f"{PREFIX}:term-gateway:*"
GATEWAY_CHANNELS = (SUMMARY_CHANNEL, CHAT_CHANNEL, JOBS_CHANNEL, RESULTS_CHANNEL, ALERTS_CHANNEL)

# Who publishes and who listens: an agent says one thing only, its samples (and their summaries).
ACCESS = (
    channel(CPU_CHANNEL, publish=["agent"], subscribe=["gateway"]),
    channel(SUMMARY_CHANNEL, publish=["agent"], subscribe=["gateway"]),
    channel(CHAT_CHANNEL, publish=["gateway"], subscribe=["gateway"]),
    channel(JOBS_CHANNEL, publish=["gateway", "worker"], subscribe=["gateway"]),
    channel(RESULTS_CHANNEL, publish=["gateway", "worker"], subscribe=["gateway"]),
    channel(CONTROL_CHANNEL, publish=["gateway"], subscribe=["worker"]),
    channel(ALERTS_CHANNEL, publish=["gateway"], subscribe=["gateway"]),
    channel(TERM_WORKER_CHANNEL, publish=["gateway"], subscribe=["worker"]),
    channel(TERM_GATEWAY_CHANNEL, publish=["worker"], subscribe=["gateway"]),
)


def key(*parts: str) -> str:
    """A key name under the prefix; for the stores only."""
    return ":".join((PREFIX, *parts))
