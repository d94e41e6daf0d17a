"""trio adapter: the blocking socket work runs in worker threads, so the event loop never stalls.

`sendmsg` of a big batch keeps the kernel busy for tens of milliseconds and releases the GIL, so it belongs in a
thread. Opening the socket also happens off the loop, in the dedicated thread of `socket_in_netns`, which keeps
trio's pooled workers out of other namespaces.
"""

from __future__ import annotations

import trio

from netlink_nft._batch import Batch
from netlink_nft._dump import dump_table
from netlink_nft._model import Ruleset, Table
from netlink_nft._transport import DEFAULT_MAX_BATCH_BYTES, NftSocket


class TrioNftSocket:
    """An `NftSocket` for trio code. Calls are serialised per socket."""

    def __init__(self, nft: NftSocket) -> None:
        self.sync = nft
        self._lock = trio.Lock()

    @classmethod
    async def open(
        cls, netns: str | None = None, *, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES, end_ack: bool | None = None
    ) -> TrioNftSocket:
        nft = await trio.to_thread.run_sync(
            lambda: NftSocket.open(netns, max_batch_bytes=max_batch_bytes, end_ack=end_ack)
        )
        return cls(nft)

    async def apply(self, batch: Batch, *, genid: int | None = None) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(lambda: self.sync.apply(batch, genid=genid))

    async def genid(self) -> int:
        async with self._lock:
            return await trio.to_thread.run_sync(self.sync.genid)

    async def dump_table(self, table: Table) -> Ruleset | None:
        async with self._lock:
            return await trio.to_thread.run_sync(dump_table, self.sync, table)

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> TrioNftSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
