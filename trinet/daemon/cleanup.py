"""``trinet cleanup``: remove trinet's table from the network namespace of every local pod (uninstall).

Reads the cluster once (the pods of this node), finds each pod's namespace like the daemon does (never the
node's own), and deletes the table where it exists, one transaction per pod. Pods whose namespace cannot be
found are reported; they have no table the kernel could still apply.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

import netlink_nft as nl
from trinet.daemon.logs import event
from trinet.daemon.netns import NetnsError, make_resolver
from trinet.daemon.settings import Settings
from trinet.kube import ApiClient, Change, ClusterStore, load_config, watch_cluster
from trinet.policy.snapshot import pod_key
from trinet.policy.to_netlink import removal

__all__ = ["cleanup"]

log = logging.getLogger("trinet.cleanup")


async def _local_pods(settings: Settings) -> ClusterStore:
    store = ClusterStore()
    send, receive = trio.open_memory_channel[Change[Any]](1 << 16)

    async def drain() -> None:
        async for _ in receive:
            pass

    async with ApiClient(load_config(settings.kubeconfig)) as api, trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await nursery.start(watch_cluster, api, store, send)
        nursery.cancel_scope.cancel()
    return store


async def cleanup(settings: Settings) -> int:
    """Remove the table from every local pod; the number of pods that failed (0: success)."""
    store = await _local_pods(settings)
    resolver = make_resolver(settings.resolved_netns_source, settings.host_prefix, settings.container_runtime_endpoint)
    table = nl.Table(nl.Family.INET, settings.table_name)
    removed = failed = 0
    for pod in sorted(store.pods.by_node(settings.node_name), key=pod_key):
        key = pod_key(pod)
        if pod.spec.host_network:
            continue
        try:
            netns = await trio.to_thread.run_sync(resolver.resolve, pod.metadata.uid, ())
            async with await nl.TrioNftSocket.open(netns.path) as sock:
                if await sock.dump_table(table) is None:
                    continue
                await sock.apply(removal(settings.table_name))
        except NetnsError as exc:
            event(log, logging.INFO, "cleanup-skipped", pod=key, reason=exc.reason, detail=str(exc))
            continue
        except (nl.NftError, OSError) as exc:
            failed += 1
            event(log, logging.ERROR, "cleanup-failed", pod=key, error=str(exc))
            continue
        removed += 1
        event(log, logging.INFO, "table-removed", pod=key, table=settings.table_name)
    event(log, logging.INFO, "cleanup-done", removed=removed, failed=failed)
    return failed
