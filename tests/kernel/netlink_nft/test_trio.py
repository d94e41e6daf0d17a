"""The trio adapter: big transactions run off the event loop; no pooled worker is left in a pod namespace."""

from __future__ import annotations

import os

import trio

from netlink_nft import TrioNftSocket, replace_contents
from tests.kernel.netlink_nft.test_large import big_ruleset
from tests.support.netns import netns_path


def _thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


async def test_apply_does_not_block_the_event_loop(netns: str) -> None:
    desired = big_ruleset(rules=500, ranges=5_000)
    batch = replace_contents(desired)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0)

    async with await TrioNftSocket.open(netns_path(netns)) as nft, trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0)
        before = ticks
        await nft.apply(batch)
        during = ticks - before
        nursery.cancel_scope.cancel()
        assert during > 1, "the event loop did not run while the batch was applied"
        assert await nft.dump_table(desired.table) == desired


async def test_worker_threads_stay_in_our_namespace(netns: str) -> None:
    own = _thread_netns()
    async with await TrioNftSocket.open(netns_path(netns)) as nft:
        await nft.genid()
        seen = {await trio.to_thread.run_sync(_thread_netns) for _ in range(10)}
    assert seen == {own}
