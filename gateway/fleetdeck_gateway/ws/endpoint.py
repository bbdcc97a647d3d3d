"""The `/ws` endpoint: handshake checks, then one receive loop and one send loop per socket.

Transport only: frame size, rate limits, parsing, close codes and slow peers. What a frame
does is in `handlers`; what the endpoint uses of the gateway is `ports.SocketServices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetdeck_common.broker import BrokerUnavailable
from fleetdeck_common.messages import (
    PROTOCOL_VERSION,
    ClientFrame,
    Hello,
    ProtocolError,
    TermInput,
    dump,
    parse_client_frame,
)

from .clients import Client
from .handlers import handle
from .outbox import Message, Outbox
from .ports import SocketServices
from .ratelimit import RateLimiter

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
BATCH_BYTES = 256 * 1024  # a batched message holds frames up to this size (a bigger frame goes alone)
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
KEYS_PER_SECOND = 500.0  # term_input frames a socket may send a second, sustained
KEYS_BURST = 1000.0


async def websocket_endpoint(websocket: WebSocket) -> None:
    gateway: SocketServices = websocket.app.state.gateway
    try:
        identity, _ = await gateway.auth.identify(websocket)
    except BrokerUnavailable:
        identity = None
    if identity is None or not gateway.auth.origin_allowed(websocket):
        # Closing before accept refuses the upgrade with HTTP 403.
        await websocket.close(code=CLOSE_POLICY)
        return
    batch = websocket.query_params.get("batch", "0")
    await websocket.accept()
    if batch not in ("0", "1"):
        refusal = ProtocolError("bad_request", "the batch parameter of /ws is 0 or 1")
        with contextlib.suppress(Exception):
            await websocket.send_text(dump(refusal.frame()))
            await websocket.close(CLOSE_POLICY, "batch is 0 or 1")
        return
    # Too slow, or the token revoked, rotated or expired: callbacks, not a waiting task each (a
    # gateway holds thousands of sockets, and every task costs memory).
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def end() -> None:
        if not stop.done():
            stop.set_result(None)

    client = Client(identity, Outbox(on_overflow=end))
    hello = Hello(
        user=identity.name, role=identity.role, version=PROTOCOL_VERSION, workers=len(gateway.queue.workers)
    )
    client.outbox.put(dump(hello))
    gateway.relay.add(client)
    sender = asyncio.create_task(_send_loop(websocket, client, batch == "1"))
    receiver = asyncio.create_task(_receive_loop(websocket, client, gateway))
    claim = gateway.revocation.watch(identity, on_end=end)
    tasks = (sender, receiver)
    for task in tasks:
        task.add_done_callback(lambda _: end())
    try:
        await stop
        if client.outbox.overflowed:
            # The sender may be stuck writing to a peer that does not read: stop it, then close.
            sender.cancel()
            gateway.metrics.slow_disconnect()
            logger.info("closing %s's socket: too far behind on results", client.identity.name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(CLOSE_TRY_AGAIN, "too slow; reconnect and watch the job"), 2
                )
        elif claim.reason is not None:
            sender.cancel()
            with contextlib.suppress(Exception):
                # Its terminals end first, each told why, while the socket can still say so.
                for frame in gateway.terms.disconnected(client, f"the terminal ended: {claim.reason}"):
                    await asyncio.wait_for(websocket.send_text(frame), 2)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(CLOSE_POLICY, claim.reason), 2)
    finally:
        gateway.terms.disconnected(client, "the connection to the browser closed")
        gateway.revocation.forget(claim)
        gateway.relay.remove(client)
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, WebSocketDisconnect):
                logger.error("connection of %s ended by an error", client.identity.name, exc_info=outcome)


def batched(frames: Sequence[Message], limit: int = BATCH_BYTES) -> list[Message]:
    """Frames as few messages: a JSON array of several frames, or one frame alone. Each message is
    one write to the socket, which is most of what a frame costs the gateway. A binary frame goes
    alone, in its place."""
    messages: list[Message] = []
    group: list[str] = []
    size = 0

    def close_group() -> None:
        if group:
            messages.append(group[0] if len(group) == 1 else "[" + ",".join(group) + "]")
            group.clear()

    for frame in frames:
        if isinstance(frame, bytes):
            close_group()
            messages.append(frame)
            continue
        if size + len(frame) > limit:
            close_group()
        if not group:
            size = 0
        group.append(frame)
        size += len(frame) + 1
    close_group()
    return messages


async def _send_loop(websocket: WebSocket, client: Client, batch: bool) -> None:
    while True:
        frames = await client.outbox.take()
        if client.outbox.overflowed:
            return
        for message in batched(frames) if batch else frames:
            try:
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)
            except Exception as exc:  # the peer is gone: what went wrong is transport, not a bug
                logger.debug("sending to %s failed (%r); closing", client.identity.name, exc)
                return


async def _receive_loop(websocket: WebSocket, client: Client, gateway: SocketServices) -> None:
    limiter = RateLimiter()
    # Keystrokes come faster than other frames (key repeat, a typist, a pasted line split up):
    # terminal input has an allowance of its own.
    keys = RateLimiter(rate=KEYS_PER_SECOND, burst=KEYS_BURST, tolerance=int(KEYS_BURST))
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
        frame: ClientFrame | None = None
        refusal: ProtocolError | None = None
        try:
            frame = parse_client_frame(raw)
        except ProtocolError as exc:
            refusal = exc
        allowance = keys if isinstance(frame, TermInput) else limiter
        if not allowance.allow():
            if allowance.flooding:
                await websocket.close(CLOSE_POLICY, "too many messages")
                return
            if allowance.refused == 1:
                client.outbox.put(dump(ProtocolError("rate_limited", "slow down: too many messages").frame()))
            continue
        if frame is None:
            assert refusal is not None
            client.outbox.put(dump(refusal.frame()))
            continue
        try:
            await handle(frame, client, gateway)
        except ProtocolError as exc:
            client.outbox.put(dump(exc.frame()))
        except BrokerUnavailable:
            unavailable = ProtocolError("unavailable", "the broker is unreachable; try again", frame.ref)
            client.outbox.put(dump(unavailable.frame()))
