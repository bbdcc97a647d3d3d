"""Team chat in the broker: a capped history list and the live channel. Owns the chat keys."""

from __future__ import annotations

from typing import Protocol

from . import topics
from .acl import grant
from .broker import KeyValue, PubSub
from .messages import Chat, dump

CHAT_HISTORY_SIZE = 100
_HISTORY_KEY = topics.key("chat", "history")
ACCESS = (grant(_HISTORY_KEY, read=["gateway"], write=["gateway"]),)


class ChatBackend(KeyValue, PubSub, Protocol):
    pass


class ChatStore:
    def __init__(self, broker: ChatBackend) -> None:
        self._broker = broker

    async def post(self, chat: Chat) -> None:
        """Keep the message for late joiners, then send it to everyone subscribed now."""
        frame = dump(chat)
        await self._broker.push_capped(_HISTORY_KEY, frame, CHAT_HISTORY_SIZE)
        await self._broker.publish(topics.CHAT_CHANNEL, frame)

    async def recent(self) -> list[str]:
        """The latest messages as frames, oldest first."""
        return await self._broker.read_list(_HISTORY_KEY)
