"""What the gateway does for each valid client frame; the socket loop lives in `transport`."""

from __future__ import annotations

from fleetdeck_common.messages import (
    Cancel,
    ChatSend,
    ClientFrame,
    Exec,
    ProtocolError,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Watch,
    dump,
)

from ..state import Gateway
from .clients import Client

RECENT_JOBS_SENT = 20


async def handle(frame: ClientFrame, client: Client, gateway: Gateway) -> None:
    """Act on one frame; raise ProtocolError to answer with an `error` (carrying the frame's ref)."""
    try:
        await _handle(frame, client, gateway)
    except ProtocolError as exc:
        exc.ref = exc.ref or frame.ref
        raise


async def _handle(frame: ClientFrame, client: Client, gateway: Gateway) -> None:
    ref = frame.ref
    if isinstance(frame, Subscribe):
        await _subscribe(frame, client, gateway)
    elif isinstance(frame, Unsubscribe):
        if "cpu" in frame.topics:
            gateway.relay.clients.stop_samples(client)
        if "fleet" in frame.topics:
            gateway.relay.fleet.unfollow(client)
        client.topics.difference_update(frame.topics)
        client.outbox.put(dump(Subscribed(topics=sorted(client.topics), ref=ref)))
    elif isinstance(frame, ChatSend):
        await gateway.chat.post(client.identity, frame.text)
    elif isinstance(frame, Exec):
        job = await gateway.jobs.submit(client.identity, frame)
        gateway.metrics.jobs_submitted.inc()
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
        gateway.relay.watches.watch(client, job.job, 0)
    elif isinstance(frame, Cancel):
        job = await gateway.jobs.cancel(client.identity, frame.job)
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
    elif isinstance(frame, Watch):
        job = await gateway.jobs.get(frame.job)
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
        gateway.relay.watches.watch(client, job.job, frame.after)


def _history_due(before: frozenset[str] | None, after: frozenset[str] | None, known: list[str]) -> list[str]:
    """Hosts whose history a client needs when its `cpu` scope goes from `before` to `after`
    (None: every host; an empty set: not subscribed)."""
    if before is None:
        return []  # it had every host already
    return [h for h in known if h not in before and (after is None or h in after)]


async def _subscribe(frame: Subscribe, client: Client, gateway: Gateway) -> None:
    relay = gateway.relay
    new = [t for t in dict.fromkeys(frame.topics) if t not in client.topics]
    history: list[str] = []
    if "cpu" in frame.topics:
        before = client.cpu_hosts if "cpu" in client.topics else frozenset()
        after = frozenset(frame.hosts) if frame.hosts is not None else None
        known = relay.presence.hosts() if after is None else sorted(after)
        history = _history_due(before, after, [h for h in known if relay.presence.presence.knows(h)])
        # Live from this moment, so nothing published while the history is read is missed; the
        # dashboard merges history with samples it already has.
        relay.clients.sample_scope(client, after)
    client.topics.update(new)
    scope = sorted(client.cpu_hosts) if client.cpu_hosts is not None else None
    client.outbox.put(dump(Subscribed(topics=sorted(client.topics), hosts=scope, ref=frame.ref)))
    if "fleet" in new:
        relay.fleet.follow(client)
    for host in history:
        encoded = await relay.history.frame(host)
        if not await client.outbox.wait_room():
            return
        client.outbox.put(encoded)
    for topic in new:
        if topic == "hosts":
            client.outbox.put_latest("hosts", relay.presence.frame())
        elif topic == "chat":
            for item in await gateway.chat.recent():
                client.outbox.put(item)
        elif topic == "jobs":
            for job in reversed(await gateway.jobs.recent(RECENT_JOBS_SENT)):
                client.outbox.put(dump(job))
            client.outbox.put(gateway.queue.frame())
