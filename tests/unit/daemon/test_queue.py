"""The dirty-pod queue: coalescing, one holder per key, no change lost, delayed retries."""

from __future__ import annotations

import trio
import trio.testing

from trinet.daemon.queue import Backoff, DirtyQueue


async def test_a_key_added_twice_is_handed_out_once() -> None:
    q = DirtyQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert [await q.get(), await q.get()] == ["a", "b"]
    assert len(q) == 0


async def test_a_key_dirtied_while_held_comes_back_after_done() -> None:
    q = DirtyQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done("a")
    assert await q.get() == "a"
    q.done("a")
    assert q.idle


async def test_delayed_keys_arrive_when_due(autojump_clock: trio.testing.MockClock) -> None:
    q = DirtyQueue()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run_timers)
        start = trio.current_time()
        q.add_after("late", 5.0)
        q.add_after("early", 1.0)
        assert await q.get() == "early"
        assert await q.get() == "late"
        assert trio.current_time() - start >= 5.0
        nursery.cancel_scope.cancel()


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(base=0.1, cap=0.5)
    assert [b.next_delay("k") for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.forget("k")
    assert b.next_delay("k") == 0.1
