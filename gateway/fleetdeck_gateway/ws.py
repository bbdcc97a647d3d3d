"""The `/ws` endpoint: handshake checks, then one receive loop and one send loop per socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetdeck_common import PROTOCOL_VERSION, topics
from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.jobstore import recent_jobs
from fleetdeck_common.messages import (
    Cancel,
    Chat,
    ChatSend,
    ClientFrame,
    CpuSample,
    Exec,
    Hello,
    History,
    ProtocolError,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Watch,
    dump,
    parse_client_frame,
)

from .ratelimit import RateLimiter
from .relay import Client

if TYPE_CHECKING:
    from .app import Gateway

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
HISTORY_SAMPLES_SENT = 900


async def websocket_endpoint(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    try:
        identity, _ = await gateway.auth.identify(websocket)
    except BrokerUnavailable:
        identity = None
    if identity is None or not gateway.auth.origin_allowed(websocket):
        # Closing before accept refuses the upgrade with HTTP 403.
        await websocket.close(code=CLOSE_POLICY)
        return
    await websocket.accept()
    client = Client(identity)
    client.outbox.put(dump(Hello(user=identity.name, role=identity.role, version=PROTOCOL_VERSION)))
    gateway.hub.add(client)
    sender = asyncio.create_task(_send_loop(websocket, client))
    receiver = asyncio.create_task(_receive_loop(websocket, client, gateway))
    too_slow = asyncio.create_task(client.outbox.overflow.wait())
    tasks = (sender, receiver, too_slow)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if client.outbox.overflowed:
            # The sender may be stuck writing to a peer that does not read: stop it, then close.
            sender.cancel()
            gateway.metrics.slow_disconnects.inc()
            logger.info("closing %s's socket: too far behind on results", client.identity.name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(CLOSE_TRY_AGAIN, "too slow; reconnect and watch the job"), 2
                )
    finally:
        gateway.hub.remove(client)
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, WebSocketDisconnect):
                logger.error("connection of %s ended by an error", client.identity.name, exc_info=outcome)


async def _send_loop(websocket: WebSocket, client: Client) -> None:
    while True:
        frames = await client.outbox.take()
        if client.outbox.overflowed:
            return
        for frame in frames:
            await websocket.send_text(frame)


async def _receive_loop(websocket: WebSocket, client: Client, gateway: Gateway) -> None:
    limiter = RateLimiter()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            raw = (message.get("bytes") or b"").decode("utf-8", "replace")
        if len(raw) > MAX_FRAME_BYTES or len(raw.encode()) > MAX_FRAME_BYTES:
            await websocket.close(CLOSE_TOO_BIG, "frame larger than 64 KiB")
            return
        if not limiter.allow():
            if limiter.flooding:
                await websocket.close(CLOSE_POLICY, "too many messages")
                return
            if limiter.refused == 1:
                client.outbox.put(dump(ProtocolError("rate_limited", "slow down: too many messages").frame()))
            continue
        try:
            frame = parse_client_frame(raw)
            await handle(frame, client, gateway)
        except ProtocolError as exc:
            client.outbox.put(dump(exc.frame()))
        except BrokerUnavailable:
            unavailable = ProtocolError("unavailable", "the broker is unreachable; try again", frame.ref)
            client.outbox.put(dump(unavailable.frame()))


async def handle(frame: ClientFrame, client: Client, gateway: Gateway) -> None:
    """Act on one valid client frame; raise ProtocolError to answer with an `error`."""
    ref = frame.ref
    try:
        if isinstance(frame, Subscribe):
            await _subscribe(frame, client, gateway)
        elif isinstance(frame, Unsubscribe):
            client.topics.difference_update(frame.topics)
            client.outbox.put(dump(Subscribed(topics=sorted(client.topics), ref=ref)))
        elif isinstance(frame, ChatSend):
            chat = Chat(
                from_=client.identity.name, text=frame.text, ts=round(time.time(), 3), id=secrets.token_hex(6)
            )
            data = dump(chat)
            await gateway.broker.push_capped(topics.CHAT_HISTORY_KEY, data, topics.CHAT_HISTORY_SIZE)
            await gateway.broker.publish(topics.CHAT_CHANNEL, data)
        elif isinstance(frame, Exec):
            job = await gateway.jobs.submit(client.identity, frame.targets, frame.command, frame.timeout)
            gateway.metrics.jobs_submitted.inc()
            client.outbox.put(dump(job.model_copy(update={"ref": ref})))
            gateway.hub.watch(client, job.job, 0)
        elif isinstance(frame, Cancel):
            job = await gateway.jobs.cancel(client.identity, frame.job)
            client.outbox.put(dump(job.model_copy(update={"ref": ref})))
        elif isinstance(frame, Watch):
            job = await gateway.jobs.get(frame.job)
            client.outbox.put(dump(job.model_copy(update={"ref": ref})))
            gateway.hub.watch(client, job.job, frame.after)
    except ProtocolError as exc:
        exc.ref = exc.ref or ref
        raise


async def _subscribe(frame: Subscribe, client: Client, gateway: Gateway) -> None:
    new = [t for t in dict.fromkeys(frame.topics) if t not in client.topics]
    # Live from this moment, so nothing published while the history is read is missed; the
    # dashboard merges history with samples it already has, and skips chat ids it has seen.
    client.topics.update(new)
    client.outbox.put(dump(Subscribed(topics=sorted(client.topics), ref=frame.ref)))
    broker = gateway.broker
    for topic in new:
        if topic == "cpu":
            for host in gateway.hub.presence.hosts():
                raw = await broker.read_list(topics.history_key(host))
                samples = []
                for item in raw[-HISTORY_SAMPLES_SENT:]:
                    with contextlib.suppress(ValidationError):
                        samples.append(CpuSample.model_validate_json(item))
                if not await client.outbox.wait_room():
                    return
                client.outbox.put(dump(History(host=host, samples=samples)))
        elif topic == "hosts":
            client.outbox.put_latest("hosts", gateway.hub.hosts_frame())
        elif topic == "chat":
            for item in await broker.read_list(topics.CHAT_HISTORY_KEY):
                client.outbox.put(item)
        elif topic == "jobs":
            for job in reversed(await recent_jobs(broker, 20)):
                client.outbox.put(dump(job))
