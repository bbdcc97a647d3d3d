"""What the gateway does for each valid client frame; the socket loop lives in `endpoint`."""

from __future__ import annotations

from fleetdeck_common.messages import (
    Cancel,
    ChatSend,
    ClientFrame,
    Exec,
    ProtocolError,
    Subscribe,
    Subscribed,
    TermClose,
    TermInput,
    TermOpen,
    TermResize,
    Unsubscribe,
    Watch,
    dump,
)

from .clients import Client
from .ports import FrameServices

RECENT_JOBS_SENT = 20


async def handle(frame: ClientFrame, client: Client, services: FrameServices) -> None:
    """Act on one frame; raise ProtocolError to answer with an `error` (carrying the frame's ref)."""
    try:
        await _handle(frame, client, services)
    except ProtocolError as exc:
        exc.ref = exc.ref or frame.ref
        raise


async def _handle(frame: ClientFrame, client: Client, services: FrameServices) -> None:
    ref = frame.ref
    if isinstance(frame, Subscribe):
        await _subscribe(frame, client, services)
    elif isinstance(frame, Unsubscribe):
        if "cpu" in frame.topics:
            services.clients.stop_samples(client)
        if "fleet" in frame.topics:
            services.fleet.unfollow(client)
        client.topics.difference_update(frame.topics)
        client.outbox.put(dump(Subscribed(topics=sorted(client.topics), ref=ref)))
    elif isinstance(frame, ChatSend):
        await services.chat.post(client.identity, frame.text)
    elif isinstance(frame, Exec):
        job = await services.jobs.submit(client.identity, frame)
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
        services.watches.watch(client, job.job, 0)
    elif isinstance(frame, Cancel):
        job = await services.jobs.cancel(client.identity, frame.job)
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
    elif isinstance(frame, TermInput):
        await services.terms.input(client, frame)
    elif isinstance(frame, TermOpen):
        await services.terms.open(client, frame)
    elif isinstance(frame, TermResize):
        await services.terms.resize(client, frame)
    elif isinstance(frame, TermClose):
        await services.terms.close(client, frame)
    elif isinstance(frame, Watch):
        job = await services.jobs.get(frame.job)
        client.outbox.put(dump(job.model_copy(update={"ref": ref})))
        services.watches.watch(client, job.job, frame.after)


def _history_due(before: frozenset[str] | None, after: frozenset[str] | None, known: list[str]) -> list[str]:
    """Hosts whose history a client needs when its `cpu` scope goes from `before` to `after`
    (None: every host; an empty set: not subscribed)."""
    if before is None:
        return []  # it had every host already
    return [h for h in known if h not in before and (after is None or h in after)]


async def _subscribe(frame: Subscribe, client: Client, services: FrameServices) -> None:
    new = [t for t in dict.fromkeys(frame.topics) if t not in client.topics]
    history: list[str] = []
    if "cpu" in frame.topics:
        before = client.cpu_hosts if "cpu" in client.topics else frozenset()
        after = frozenset(frame.hosts) if frame.hosts is not None else None
        known = services.presence.hosts() if after is None else sorted(after)
        history = _history_due(before, after, [h for h in known if services.presence.knows(h)])
        # Live from this moment, so nothing published while the history is read is missed; the
        # dashboard merges history with samples it already has.
        services.clients.sample_scope(client, after)
        await services.samples.live()
    client.topics.update(new)
    scope = sorted(client.cpu_hosts) if client.cpu_hosts is not None else None
    client.outbox.put(dump(Subscribed(topics=sorted(client.topics), hosts=scope, ref=frame.ref)))
    if "fleet" in frame.topics:  # again with another fleet_format: from a full frame in that one
        fleet_format = frame.fleet_format
        services.fleet.follow(client, compact=None if fleet_format is None else fleet_format == "compact")
    for host in history:
        encoded = await services.history.frame(host)
        if not await client.outbox.wait_room():
            return
        client.outbox.put(encoded)
    changes = frame.hosts_format == "changes"
    if "hosts" in new or (frame.hosts_format is not None and changes != client.hosts_changes):
        services.presence.follow(client, changes)  # again in another hosts_format: the whole list first
    for topic in new:
        if topic == "chat":
            for item in await services.chat.recent():
                client.outbox.put(item)
        elif topic == "jobs":
            for job in reversed(await services.jobs.recent(RECENT_JOBS_SENT)):
                client.outbox.put(dump(job))
            client.outbox.put(services.queue.frame())
        elif topic == "alerts":
            client.outbox.put(services.alerts.frame())
