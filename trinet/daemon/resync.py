"""The periodic resync: every period, read back the table of every local pod and repair what drifted.

Level-triggered safety net under the event-driven path: a table flushed or edited by hand, a sandbox recreated
with the same pod object, an event we could not act on. Each pod is marked for read-back and queued; the worker
dumps its table and reconciles with ``adopt`` (no transaction when it matches, a counted repair when it does not).
"""

from __future__ import annotations

import logging

import trio

from trinet.daemon.logs import event
from trinet.daemon.worker import NETWORK_STATUS, PodWorker
from trinet.policy.snapshot import pod_key

__all__ = ["local_pod_keys", "resync_forever", "resync_once"]

log = logging.getLogger("trinet.resync")


def local_pod_keys(worker: PodWorker) -> set[str]:
    """Local pods that may hold a table: this node's, not hostNetwork, with a network-status annotation."""
    return {
        pod_key(p)
        for p in worker.store.pods.by_node(worker.node_name)
        if not p.spec.host_network and NETWORK_STATUS in p.metadata.annotations
    }


def resync_once(worker: PodWorker) -> int:
    keys = local_pod_keys(worker)
    for key in sorted(keys):
        worker.expect_read_back(key, "resync")
        worker.mark_dirty(key)
    event(log, logging.DEBUG, "resync", pods=len(keys))
    return len(keys)


async def resync_forever(worker: PodWorker, period: float) -> None:
    """Runs until cancelled; ``period`` 0 disables the resync."""
    if period <= 0:
        await trio.sleep_forever()
    while True:
        await trio.sleep(period)
        resync_once(worker)
