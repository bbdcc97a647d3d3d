"""What the gateway does for each valid client frame; the socket loop lives in `transport`."""

from __future__ import annotations

from fleetdeck_common.messages import (
    Cancel,
    ChatSend,
    ClientFrame,
    Exec,
    History,
    ProtocolError,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Watch,
    dump,
)

from .clients import Client
from .state import Gateway

HISTORY_SAMPLES_SENT = 900
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


async def _subscribe(frame: Subscribe, client: Client, gateway: Gateway) -> None:
    new = [t for t in dict.fromkeys(frame.topics) if t not in client.topics]
    # Live from this moment, so nothing published while the history is read is missed; the
    # dashboard merges history with samples it already has, and skips chat ids it has seen.
    client.topics.update(new)
    client.outbox.put(dump(Subscribed(topics=sorted(client.topics), ref=frame.ref)))
    for topic in new:
        if topic == "cpu":
            for host in gateway.relay.presence.hosts():
                samples = await gateway.hosts.history(host, HISTORY_SAMPLES_SENT)
                if not await client.outbox.wait_room():
                    return
                client.outbox.put(dump(History(host=host, samples=samples)))
        elif topic == "hosts":
            client.outbox.put_latest("hosts", gateway.relay.presence.frame())
        elif topic == "chat":
            for item in await gateway.chat.recent():
                client.outbox.put(item)
        elif topic == "jobs":
            for job in reversed(await gateway.jobs.recent(RECENT_JOBS_SENT)):
                client.outbox.put(dump(job))
