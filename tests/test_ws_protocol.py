"""Bad input on /ws and the HTTP API: refused handshakes, error frames, closes for abuse, slow clients."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis.asyncio as aioredis
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fleetdeck_common import topics
from fleetdeck_gateway.ws.endpoint import batched
from testbed.procs import RedisServer, start_gateway, wait_until
from testbed.tcpqueues import established
from tests.support.rawws import OP_CLOSE, OP_PING, raw_ws_that_never_reads, read_until_closed
from tests.support.stacks import Stack, Tokens
from tests.support.wsclient import WsClient


@pytest.mark.parametrize(
    ("token", "origin"),
    [(None, None), ("fdk_not-a-real-token", None), ("OPERATOR", "http://evil.example")],
)
async def test_handshake_without_valid_token_or_origin_is_refused_with_403(
    stack: Stack, tokens: Tokens, token: str | None, origin: str | None
) -> None:
    real = tokens.operator if token == "OPERATOR" else token
    with pytest.raises(InvalidStatus) as caught:
        await WsClient.open(stack.gateway.ws_url, real, origin=origin)
    assert caught.value.response.status_code == 403


async def test_own_origin_and_session_cookie_are_accepted(stack: Stack, tokens: Tokens) -> None:
    with httpx.Client(base_url=stack.gateway.url) as http:
        assert http.post("/api/login", json={"token": "wrong"}).status_code == 401
        foreign = http.post(
            "/api/login", json={"token": tokens.viewer}, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403 and "fleetdeck_session" not in foreign.cookies
        login = http.post("/api/login", json={"token": tokens.viewer})
        assert login.status_code == 200 and login.json() == {"user": "bob", "role": "viewer"}
        cookie_header = login.headers["set-cookie"].lower()
        assert "httponly" in cookie_header and "samesite=strict" in cookie_header
        cookie = http.cookies["fleetdeck_session"]
    origin = stack.gateway.url
    client = await WsClient.open(
        stack.gateway.ws_url, origin=origin, additional_headers={"Cookie": f"fleetdeck_session={cookie}"}
    )
    assert (await client.recv())["user"] == "bob"
    await client.close()
    with pytest.raises(InvalidStatus):
        await WsClient.open(
            stack.gateway.ws_url,
            origin="http://evil.example",
            additional_headers={"Cookie": f"fleetdeck_session={cookie}"},
        )
    with httpx.Client(base_url=stack.gateway.url, cookies={"fleetdeck_session": cookie}) as http:
        assert http.post("/api/logout").status_code == 200
    with pytest.raises(InvalidStatus):
        await WsClient.open(
            stack.gateway.ws_url, additional_headers={"Cookie": f"fleetdeck_session={cookie}"}
        )


async def send_invalid_frames(url: str, token: str) -> None:
    """Every kind of invalid frame on one connection: each gets its error, the connection keeps working."""
    client = await WsClient.open(url, token)
    await client.expect_type("hello")
    cases = [
        ("{oops", "bad_request", None),
        ('{"type":"fly","ref":"r1"}', "unknown_type", "r1"),
        ('{"type":"subscribe","topics":[1],"ref":"r2"}', "bad_request", "r2"),
        ('{"type":"chat","text":5,"ref":"r3"}', "bad_request", "r3"),
        ('{"type":"exec","targets":"127.0.0.2","command":"id","ref":"r4"}', "forbidden", "r4"),
        ('{"type":"cancel","job":"abc","ref":"r5"}', "forbidden", "r5"),
        ('{"type":"watch","job":"nosuchjob","ref":"r6"}', "not_found", "r6"),
    ]
    for raw, code, ref in cases:
        await client.send(raw)
        error = await client.expect_type("error")
        assert error["code"] == code, error
        assert error.get("ref") == ref
        assert error["message"]
    await client.send({"type": "subscribe", "topics": ["hosts"], "ref": "ok"})
    assert (await client.expect_type("subscribed"))["ref"] == "ok"
    await client.close()


async def test_invalid_frames_get_errors_and_the_connection_keeps_working(
    stack: Stack, tokens: Tokens
) -> None:
    await send_invalid_frames(stack.gateway.ws_url, tokens.viewer)


async def send_oversized_frame(url: str, token: str) -> int | None:
    """Send a 1 MiB frame; the close code the gateway answers with."""
    client = await WsClient.open(url, token, max_size=None)
    await client.expect_type("hello")
    await client.send(json.dumps({"type": "chat", "text": "x" * (1024 * 1024)}))
    with pytest.raises(ConnectionClosed) as caught:
        await client.expect_type("never", timeout=5)
    return caught.value.rcvd.code if caught.value.rcvd is not None else None


async def test_oversized_frame_closes_with_1009(stack: Stack, tokens: Tokens) -> None:
    assert await send_oversized_frame(stack.gateway.ws_url, tokens.viewer) == 1009


async def flood(url: str, token: str) -> int | None:
    """Flood one connection: past the burst it is refused with a clear error, still connected;
    keeping it up gets the connection closed. The close code."""
    client = await WsClient.open(url, token)
    await client.expect_type("hello")
    frame = json.dumps({"type": "unsubscribe", "topics": ["cpu"]})
    for _ in range(150):  # well past the burst
        await client.send(frame)
    error = await client.expect_type("error", code="rate_limited")
    assert "slow down" in error["message"]
    with pytest.raises(ConnectionClosed) as caught:
        for _ in range(2000):
            await client.send(frame)
        await client.expect_type("never", timeout=5)
    return caught.value.rcvd.code if caught.value.rcvd is not None else None


async def test_a_flood_is_rate_limited_then_closed(stack: Stack, tokens: Tokens) -> None:
    assert await flood(stack.gateway.ws_url, tokens.viewer) == 1008


async def publish_cpu_flood(redis_url: str, count: int = 1000) -> float:
    """Publish `count` large samples of a made-up host as fast as possible; the last one's ts."""
    publisher = aioredis.Redis.from_url(redis_url)
    base = time.time()
    last_ts = 0.0
    try:
        for i in range(count):
            last_ts = round(base + i * 0.001, 3)
            sample = {
                "type": "cpu",
                "host": "flood-host",
                "ts": last_ts,
                "total": 50.0,
                "percpu": [float(i % 100)] * 64,
                "mem": 10.0,
                "load": [1.0, 1.0, 1.0],
                "interval": 1.0,
            }
            await publisher.publish(topics.CPU_CHANNEL, json.dumps(sample))
    finally:
        await publisher.aclose()
    return last_ts


async def test_a_client_that_never_reads_does_not_grow_memory_or_slow_others(
    stack: Stack, tokens: Tokens
) -> None:
    gateway = psutil.Process(stack.gateway.service.pid)
    # Following only the flooded host: no history of the other hosts of the shared stack gets in
    # the way, so what piles up for the slow client is exactly the flood.
    slow = raw_ws_that_never_reads(
        stack.gateway.port, tokens.viewer, {"type": "subscribe", "topics": ["cpu"], "hosts": ["flood-host"]}
    )
    fast = await WsClient.open(stack.gateway.ws_url, tokens.viewer)
    await fast.send({"type": "subscribe", "topics": ["cpu"]})
    await fast.expect_type("subscribed")
    rss_before = gateway.memory_info().rss
    try:
        last_ts = await publish_cpu_flood(stack.redis_url)
        # The fast client gets the freshest sample of the flood, whatever the slow one does.
        await fast.expect(
            lambda f: f["type"] == "cpu" and f["host"] == "flood-host" and f["ts"] == last_ts, 10
        )

        # Whether stale samples were dropped for it or the socket's buffers took them depends on the
        # kernel's buffers; what must hold is that nothing piles up in the gateway. (Latest-wins
        # itself is proven in-process: tests/test_relay.py.)
        metrics = httpx.get(stack.gateway.url + "/metrics").text
        queued = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("fleetdeck_gateway_queued_bytes")
        )
        assert queued < 64 * 1024, f"{queued} bytes queued for slow clients"
        assert gateway.memory_info().rss - rss_before < 40 * 1024 * 1024
    finally:
        slow.close()
        await fast.close()


def test_http_api_token_rules(stack: Stack, tokens: Tokens) -> None:
    url = stack.gateway.url
    viewer = {"Authorization": f"Bearer {tokens.viewer}"}
    assert httpx.get(url + "/api/hosts").status_code == 401
    assert httpx.get(url + "/api/hosts", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url + "/api/hosts", headers=viewer).status_code == 200
    job = {"targets": "127.0.0.2", "command": "id"}
    assert httpx.post(url + "/api/jobs", json=job).status_code == 401
    assert httpx.post(url + "/api/jobs", json=job, headers=viewer).status_code == 403
    assert httpx.get(url + "/api/jobs/nosuchjob", headers=viewer).status_code == 404
    assert httpx.get(url + "/", follow_redirects=False).status_code == 303


async def test_gateway_keeps_serving_after_all_that(stack: Stack, tokens: Tokens) -> None:
    """Every abuse above, done here on its own connections (tests run in any order), and then a
    fresh client is served as usual while the client that never reads still holds its socket open."""
    url, token = stack.gateway.ws_url, tokens.viewer
    slow = raw_ws_that_never_reads(stack.gateway.port, token, {"type": "subscribe", "topics": ["cpu"]})
    try:
        await publish_cpu_flood(stack.redis_url)  # far more than the slow client's socket buffers
        assert await send_oversized_frame(url, token) == 1009
        assert await flood(url, token) == 1008
        await send_invalid_frames(url, token)
        client = await WsClient.open(url, token)
        assert (await client.expect_type("hello"))["user"] == "bob"
        await client.send({"type": "subscribe", "topics": ["cpu"], "ref": "after"})
        await client.expect_type("subscribed", ref="after")
        # A live sample (not history) of a real agent, published after the subscription.
        await client.expect(lambda f: f["type"] == "cpu" and f["host"] == "agent-a")
        await client.close()
    finally:
        slow.close()


async def test_per_message_deflate_is_off_unless_switched_on(
    stack: Stack, tokens: Tokens, logs: Path
) -> None:
    plain = await WsClient.open(stack.gateway.ws_url, tokens.viewer)
    assert plain.ws.response is not None
    assert "permessage-deflate" not in plain.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    await plain.close()
    deflating = start_gateway(
        stack.users.url("gateway"),
        logs,
        tokens.file,
        name="gateway-deflate",
        FLEETDECK_WS_DEFLATE="true",
        FLEETDECK_JOB_KEY_FILE=stack.users.job_key,
    )
    try:
        client = await WsClient.open(deflating.ws_url, tokens.viewer)
        assert client.ws.response is not None
        assert "permessage-deflate" in client.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert (await client.recv())["type"] == "hello"
        await client.close()
    finally:
        deflating.stop()


def test_a_peer_that_never_answers_pings_is_dropped(stack: Stack, tokens: Tokens, logs: Path) -> None:
    gateway = start_gateway(
        stack.users.url("gateway"),
        logs,
        tokens.file,
        name="gateway-ping",
        FLEETDECK_WS_PING_INTERVAL="0.5",
        FLEETDECK_JOB_KEY_FILE=stack.users.job_key,
    )
    try:
        silent = raw_ws_that_never_reads(
            gateway.port, tokens.viewer, {"type": "subscribe", "topics": ["hosts"]}
        )
        silent.settimeout(10)
        started = time.monotonic()
        frames = read_until_closed(silent)  # read, but never answer a ping
        elapsed = time.monotonic() - started
        # The gateway pinged, got no pong, then closed: a close frame (1011) last, then the TCP close.
        opcodes = [f.opcode for f in frames]
        assert OP_PING in opcodes[:-1], opcodes
        assert opcodes[-1] == OP_CLOSE, opcodes
        assert frames[-1].close_code == 1011, frames[-1]
        assert elapsed < 5
        silent.close()
    finally:
        gateway.stop()


def test_batched_messages_keep_every_frame_in_order_and_stay_small() -> None:
    frames = [json.dumps({"type": "cpu", "n": n, "pad": "x" * 100}) for n in range(50)]
    messages = batched(frames, limit=1000)
    texts = [m for m in messages if isinstance(m, str)]
    assert texts == messages and all(len(m) <= 1000 for m in texts)
    flat = [f for m in texts for f in (json.loads(m) if m.startswith("[") else [json.loads(m)])]
    assert [f["n"] for f in flat] == list(range(50))
    big = json.dumps({"type": "history", "pad": "y" * 5000})
    assert batched([frames[0], big, frames[1]], limit=1000) == [frames[0], big, frames[1]]
    assert batched([]) == []
    # A binary frame (compact fleet) is a message of its own, in its place.
    binary = b"\x01\x00compact"
    together = "[" + frames[1] + "," + frames[2] + "]"
    assert batched([frames[0], binary, frames[1], frames[2]]) == [frames[0], binary, together]


async def test_batch_1_puts_frames_that_wait_together_in_one_message(stack: Stack, tokens: Tokens) -> None:
    client = await WsClient.open(stack.gateway.ws_url + "?batch=1", tokens.viewer)
    publisher = aioredis.Redis.from_url(stack.redis_url)
    try:
        first = json.loads(await asyncio.wait_for(client.ws.recv(), 10))
        assert first["type"] == "hello", first
        await client.send({"type": "subscribe", "topics": ["chat"], "ref": "b"})
        flat: list[dict[str, Any]] = []
        while not any(f["type"] == "subscribed" for f in flat):
            message = json.loads(await asyncio.wait_for(client.ws.recv(), 10))
            flat.extend(message if isinstance(message, list) else [message])

        # One pipelined burst reaches the gateway in one read, so its messages wait together in
        # the socket's outbox and leave as arrays: in order, none lost.
        ids = [f"batch-{time.time_ns()}-{n}" for n in range(200)]
        async with publisher.pipeline(transaction=False) as pipe:
            for id_ in ids:
                chat = {"type": "chat", "from": "batcher", "text": "hi", "ts": time.time(), "id": id_}
                pipe.publish(topics.CHAT_CHANNEL, json.dumps(chat))
            await pipe.execute()
        messages: list[Any] = []
        received: list[str] = []
        while ids[-1] not in received:
            message = json.loads(await asyncio.wait_for(client.ws.recv(), 10))
            messages.append(message)
            frames = message if isinstance(message, list) else [message]
            received += [f["id"] for f in frames if f["type"] == "chat" and f.get("from") == "batcher"]
        assert received == ids
        assert any(isinstance(m, list) and len(m) > 1 for m in messages), [
            len(m) if isinstance(m, list) else 1 for m in messages
        ]
    finally:
        await publisher.aclose()
        await client.close()


@pytest.mark.parametrize("value", ["2", "yes", ""])
async def test_a_bad_batch_parameter_is_refused_with_a_reason(
    stack: Stack, tokens: Tokens, value: str
) -> None:
    client = await WsClient.open(f"{stack.gateway.ws_url}?batch={value}", tokens.viewer)
    try:
        error = await client.expect_type("error")
        assert (error["code"], "batch" in error["message"]) == ("bad_request", True)
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv(5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        await client.close()


async def flood_a_reader_that_stalls(
    tmp_path: Path, tokens: Tokens, name: str, messages: int, let_go_within: float, ping_interval: float = 20
) -> str:
    """A gateway of its own (so the flood reaches nobody else), a chat follower that never reads,
    `messages` chat messages of 2,000 characters; waits for the gateway to let go of that
    socket and returns the gateway's log."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = start_gateway(
        redis_server.url, tmp_path, tokens.file, name=name, FLEETDECK_WS_PING_INTERVAL=f"{ping_interval:g}"
    )
    process = psutil.Process(gateway.service.pid)
    slow = raw_ws_that_never_reads(gateway.port, tokens.viewer, {"type": "subscribe", "topics": ["chat"]})
    port = slow.getsockname()[1]

    def held() -> bool:
        return any(c.raddr and c.raddr.port == port for c in process.net_connections(kind="tcp"))

    publisher = aioredis.Redis.from_url(redis_server.url)
    try:
        wait_until(held, 10, what="the socket to be open")
        for i in range(messages):
            message = {"type": "chat", "from": "flood", "text": "x" * 2000, "ts": time.time(), "id": str(i)}
            await publisher.publish(topics.CHAT_CHANNEL, json.dumps(message))
        wait_until(lambda: not held(), let_go_within, what="the gateway to let go of the socket")
    finally:
        await publisher.aclose()
        slow.close()
        gateway.stop()
        redis_server.stop()
    return (tmp_path / f"{name}.log").read_text()


async def test_a_client_dropped_for_not_reading_loses_its_socket_too(tmp_path: Path, tokens: Tokens) -> None:
    """Its queue full, the gateway gives up on it (1013); the close frame cannot get past what the
    peer never read, so the connection is aborted: no socket held for as long as the peer likes."""
    # 12 MB of chat: more than the 8 MiB a socket may have waiting.
    log = await flood_a_reader_that_stalls(tmp_path, tokens, "gateway-abort", 6000, 40)
    assert "too far behind" in log and "aborting a WebSocket connection" in log


async def test_a_peer_that_stops_answering_pings_with_bytes_unsent_is_let_go(
    tmp_path: Path, tokens: Tokens
) -> None:
    """uvicorn gives up on a peer that misses a pong, but its close waits for bytes the peer never
    reads: the gateway aborts the connection instead of holding the socket."""
    # 6 MB of chat: more than the sockets hold, less than the outbox limit.
    log = await flood_a_reader_that_stalls(tmp_path, tokens, "gateway-ping-abort", 3000, 30, ping_interval=1)
    assert "aborting a WebSocket connection" in log and "too far behind" not in log


async def test_what_a_peer_does_not_read_waits_in_the_gateway_not_in_the_kernel(
    tmp_path: Path, tokens: Tokens
) -> None:
    """The kernel send buffer is capped (FLEETDECK_WS_SEND_BUFFER): what a slow peer has not taken
    stays in its outbox, where latest-wins and the outbox limit apply, not in megabytes of kernel
    memory the gateway cannot take back."""
    cap = 64 * 1024
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = start_gateway(
        redis_server.url, tmp_path, tokens.file, name="gateway-sndbuf", FLEETDECK_WS_SEND_BUFFER=str(cap)
    )
    slow = raw_ws_that_never_reads(gateway.port, tokens.viewer, {"type": "subscribe", "topics": ["chat"]})
    port = slow.getsockname()[1]
    publisher = aioredis.Redis.from_url(redis_server.url)

    def queued_in_outboxes() -> float:
        metrics = httpx.get(gateway.url + "/metrics").text
        return next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("fleetdeck_gateway_queued_bytes")
        )

    def kernel_send_queue() -> int:
        return sum(
            q.send_queue for q in established() if (q.local_port, q.remote_port) == (gateway.port, port)
        )

    try:
        # 3 MB of chat: less than the outbox limit (no 1013), more than an uncapped kernel takes.
        for i in range(1500):
            message = {"type": "chat", "from": "flood", "text": "x" * 2000, "ts": time.time(), "id": str(i)}
            await publisher.publish(topics.CHAT_CHANNEL, json.dumps(message))
        wait_until(lambda: queued_in_outboxes() > 2_000_000, 20, what="the outbox to hold what the peer left")
        # The kernel counts its bookkeeping against the cap too (it doubles what it is asked for).
        assert 0 < kernel_send_queue() <= 2 * cap
    finally:
        await publisher.aclose()
        slow.close()
        gateway.stop()
        redis_server.stop()
