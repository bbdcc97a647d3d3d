"""A client's outbox: bounded, samples latest-value-wins, other frames never dropped silently."""

from __future__ import annotations

import asyncio

from fleetdeck_gateway.ws.outbox import Outbox


async def test_samples_coalesce_per_key_while_the_client_is_not_reading() -> None:
    box = Outbox()
    for i in range(1000):
        box.put_latest("cpu:a", f"a{i}")
        box.put_latest("cpu:b", f"b{i}")
    assert len(box) == 2
    assert box.dropped == 1998
    assert await box.take() == ["a999", "b999"]


async def test_reliable_frames_keep_order_and_come_before_samples() -> None:
    box = Outbox()
    box.put_latest("cpu:a", "sample")
    for i in range(5):
        box.put(f"r{i}")
    assert await box.take() == ["r0", "r1", "r2", "r3", "r4", "sample"]


async def test_overflow_marks_the_client_instead_of_growing() -> None:
    box = Outbox(bytes_limit=100)
    for _ in range(20):
        box.put("x" * 10)
    assert box.overflowed
    assert box.queued_bytes <= 100


async def test_take_waits_for_a_frame() -> None:
    box = Outbox()
    # The frame is put only once `take` has given the loop back, i.e. is waiting: a take that
    # returned at once would return nothing.
    asyncio.get_running_loop().call_soon(box.put, "hello")
    assert await box.take() == ["hello"]


async def test_wait_room_blocks_above_half_and_resumes_after_take() -> None:
    box = Outbox(bytes_limit=100)
    box.put("x" * 60)
    taker = asyncio.create_task(box.take())  # runs only once `wait_room` waits
    assert await box.wait_room() is True
    assert taker.done()  # so `wait_room` returned after the take, not before
    assert not box.overflowed


async def test_a_client_that_makes_no_room_in_time_is_overflowed() -> None:
    box = Outbox(bytes_limit=100)
    box.put("x" * 60)
    assert await box.wait_room(timeout=0.05) is False
    assert box.overflowed
