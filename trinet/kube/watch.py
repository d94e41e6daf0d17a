"""`watch_cluster`: the four reflectors the daemon needs, in one nursery."""

from __future__ import annotations

from typing import Any

import trio

from trinet.kube.client import ApiClient
from trinet.kube.reflector import Reflector, ReflectorOptions
from trinet.kube.resources import NADS, NAMESPACES, PODS, POLICIES
from trinet.kube.store import Change, ClusterStore

__all__ = ["watch_cluster"]


async def watch_cluster(
    api: ApiClient,
    store: ClusterStore,
    changes: trio.MemorySendChannel[Change[Any]],
    *,
    pod_field_selector: str | None = None,
    options: ReflectorOptions | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep `store` in sync with pods, namespaces, MultiNetworkPolicies and NADs until cancelled.

    `task_status.started()` is called once every reflector has finished its initial sync, i.e. the store is
    complete. The changes of that initial sync (old=None) are still being delivered to `changes` at that point:
    the store is updated first and each step's changes are then sent, waiting for the consumer (back-pressure),
    so starting this before the consumer reads the channel cannot deadlock.
    """
    reflectors = [
        Reflector(PODS, api, store, changes, field_selector=pod_field_selector, options=options),
        Reflector(NAMESPACES, api, store, changes, options=options),
        Reflector(POLICIES, api, store, changes, options=options),
        Reflector(NADS, api, store, changes, options=options),
    ]
    async with trio.open_nursery() as nursery:
        for reflector in reflectors:
            nursery.start_soon(reflector.run, name=f"reflector-{reflector.resource.name}")
        for reflector in reflectors:
            await reflector.synced.wait()
        task_status.started()
