"""Team chat in the broker (`chatstore.py`): kept for late joiners, capped, and sent live."""

from __future__ import annotations

import asyncio

from fleetdeck_common import topics
from fleetdeck_common.broker.memory import MemoryBroker
from fleetdeck_common.chatstore import CHAT_HISTORY_SIZE, ChatStore
from fleetdeck_common.messages import Chat, dump


def _chat(i: int) -> Chat:
    return Chat(from_="ann", text=f"hello {i}", ts=1000.0 + i)


async def test_a_posted_message_is_sent_live_and_kept_for_late_joiners() -> None:
    broker = MemoryBroker()
    store = ChatStore(broker)
    async with broker.subscribe([topics.CHAT_CHANNEL]) as live:
        await store.post(_chat(1))
        assert (await asyncio.wait_for(anext(live), 1)).data == dump(_chat(1))
    assert await store.recent() == [dump(_chat(1))]


async def test_the_history_keeps_the_newest_messages_oldest_first() -> None:
    store = ChatStore(MemoryBroker())
    for i in range(CHAT_HISTORY_SIZE + 5):
        await store.post(_chat(i))
    kept = await store.recent()
    assert len(kept) == CHAT_HISTORY_SIZE
    assert kept[0] == dump(_chat(5)) and kept[-1] == dump(_chat(CHAT_HISTORY_SIZE + 4))
