"""Team chat: who said what, kept for late joiners and sent to everyone subscribed."""

from __future__ import annotations

import secrets
import time

from fleetdeck_common.chatstore import ChatStore
from fleetdeck_common.messages import Chat

from ..auth.identity import Identity


class ChatService:
    def __init__(self, store: ChatStore) -> None:
        self._store = store

    async def post(self, who: Identity, text: str) -> Chat:
        chat = Chat(from_=who.name, text=text, ts=round(time.time(), 3), id=secrets.token_hex(6))
        await self._store.post(chat)
        return chat

    async def recent(self) -> list[str]:
        """The latest messages as ready frames, oldest first."""
        return await self._store.recent()
