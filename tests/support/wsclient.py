"""A small WebSocket test client: send frames, wait for the frame you expect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from fleetdeck_common.fleet_compact import Decoder

Frame = dict[str, Any]


class WsClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[Frame] = []
        self.fleet = Decoder()  # binary messages are compact fleet frames
        self.binary_bytes: list[int] = []  # the size of each binary message received
        self.text_bytes: list[int] = []  # and of each text one

    @classmethod
    async def open(
        cls, url: str, token: str | None = None, origin: str | None = None, **kwargs: Any
    ) -> WsClient:
        headers = dict(kwargs.pop("additional_headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("max_size", 32 * 1024 * 1024)
        ws = await connect(
            url,
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            **kwargs,
        )
        return cls(ws)

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 10.0) -> Frame:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(raw, bytes):
            self.binary_bytes.append(len(raw))
            frame: Frame = self.fleet.feed(raw)
        else:
            self.text_bytes.append(len(raw.encode()))
            frame = json.loads(raw)
        self.seen.append(frame)
        return frame

    async def expect(self, check: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The next frame that passes `check`, skipping others; fails after `timeout` seconds."""

        async def wait() -> Frame:
            while True:
                frame = await self.recv(timeout)
                if check(frame):
                    return frame

        return await asyncio.wait_for(wait(), timeout)

    async def expect_type(self, kind: str, timeout: float = 10.0, **fields: Any) -> Frame:
        return await self.expect(
            lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()), timeout
        )

    async def close(self) -> None:
        await self.ws.close()
