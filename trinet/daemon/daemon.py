"""``trinet run``: one trio nursery holding the reflectors, the mapper, the workers, the resync and the probes.

Order of start-up, and why:

1. the health server (``/healthz`` answers at once, ``/readyz`` says 503 until step 5);
2. the change consumer (mapper), so the reflectors never block on a full channel; it only queues pods;
3. the reflectors, until every one has listed (the store is complete);
4. every local pod is marked for read-back (adoption) and queued, then the workers start: a pod whose table
   already matches costs no transaction, a pod no policy selects any more loses its (orphaned) table;
5. once every pod of step 4 was visited once, the daemon is ready.

SIGTERM and SIGINT cancel the nursery: the daemon stops and **leaves every rule in place** (pods stay enforced
while a new daemon starts; ``trinet cleanup`` removes the tables).
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import trio

import netlink_nft as nl
from trinet.daemon.health import Health, serve_health
from trinet.daemon.logs import event
from trinet.daemon.mapper import Mapper
from trinet.daemon.netns import make_resolver
from trinet.daemon.observer import Observer
from trinet.daemon.queue import DirtyQueue
from trinet.daemon.resync import local_pod_keys, resync_forever
from trinet.daemon.settings import Settings, compile_options, load_custom_rules
from trinet.daemon.snapshots import SnapshotCache
from trinet.daemon.worker import PodWorker
from trinet.kube import ApiClient, Change, ClusterStore, load_config, watch_cluster
from trinet.objects import MultiNetworkPolicy
from trinet.observability.metrics import Metrics
from trinet.observability.observer import MetricsObserver, run_observability

__all__ = ["Daemon", "run"]

log = logging.getLogger("trinet.daemon")

STALL_LIMIT = 120.0  # a worker busy with one pod for longer is reported as stalled (health)


class Daemon:
    """The running daemon's parts, built from settings (``run`` drives them)."""

    def __init__(self, settings: Settings, observer: Observer | None = None) -> None:
        self.settings = settings
        self.observer: Observer = observer or MetricsObserver(Metrics(per_pod=settings.metrics_per_pod_labels))
        self.options = compile_options(settings, load_custom_rules(settings))
        self.store = ClusterStore()
        self.queue = DirtyQueue()
        self.snapshots = SnapshotCache(self.store)
        self.mapper = Mapper(self.store, settings.node_name)
        self.worker = PodWorker(
            store=self.store,
            node_name=settings.node_name,
            options=self.options,
            resolver=make_resolver(
                settings.resolved_netns_source, settings.host_prefix, settings.container_runtime_endpoint
            ),
            queue=self.queue,
            observer=self.observer,
            snapshots=self.snapshots,
        )
        self.health = Health(self.workers_alive)
        self.busy: dict[int, tuple[float, str]] = {}
        self._reported_policies: dict[str, str] = {}

    def workers_alive(self) -> bool:
        """No worker has been busy with one pod for longer than ``STALL_LIMIT`` (true before they start)."""
        now = time.monotonic()
        return all(now - since < STALL_LIMIT for since, _ in self.busy.values())

    async def consume_changes(self, changes: trio.MemoryReceiveChannel[Change[Any]]) -> None:
        async for change in changes:
            self.snapshots.changed(change)
            if isinstance(change.new, MultiNetworkPolicy):
                self._report_policy(change.new)
            for key in sorted(self.mapper.affected(change)):
                self.worker.mark_dirty(key)

    def _report_policy(self, policy: MultiNetworkPolicy) -> None:
        """Log (and observe) a policy's validation errors once per version: isolation is kept, items dropped."""
        key = f"{policy.metadata.namespace}/{policy.metadata.name}"
        effective = self.mapper.effective(policy)
        if self._reported_policies.get(key) == policy.metadata.resource_version:
            return
        self._reported_policies[key] = policy.metadata.resource_version
        if effective.errors:
            event(log, logging.WARNING, "policy-invalid", policy=key, errors="; ".join(effective.errors),
                  effect="invalid items dropped, isolation kept")  # fmt: skip
            self.observer.invalid_policy(key, tuple(effective.errors))
        for warning in effective.warnings:
            event(log, logging.INFO, "policy-warning", policy=key, warning=warning)

    async def worker_task(self, index: int) -> None:
        worker = self.worker

        while True:
            key = await self.queue.get()
            self.busy[index] = (time.monotonic(), key)
            self.observer.queue_depth(len(self.queue))
            try:
                result = await worker.work(key)
            finally:
                self.busy.pop(index, None)
                self.queue.done(key)
            worker.finished(key, result)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        config = load_config(settings.kubeconfig)
        send, receive = trio.open_memory_channel[Change[Any]](1024)
        async with ApiClient(config) as api, trio.open_nursery() as nursery:
            if settings.health_address is not None:
                await nursery.start(serve_health, settings.health_address, self.health)
            await nursery.start(run_observability, self, api)  # /metrics, then Events once synced
            nursery.start_soon(self.queue.run_timers)
            nursery.start_soon(self.worker.closer.run)
            nursery.start_soon(self.consume_changes, receive)
            event(log, logging.INFO, "starting", node=settings.node_name, table=settings.table_name,
                  workers=settings.workers, resync_s=settings.resync_period,
                  netns_source=settings.resolved_netns_source)  # fmt: skip
            if settings.container_runtime_endpoint and settings.resolved_netns_source == "procfs":
                event(log, logging.WARNING, "cri-unavailable", endpoint=settings.container_runtime_endpoint,
                      netns_source="procfs", reason="gRPC not installed (trinet[cri])")  # fmt: skip
            await nursery.start(watch_cluster, api, self.store, send)
            initial = local_pod_keys(self.worker)
            event(log, logging.INFO, "store-synced", pods=len(self.store.pods), local_pods=len(initial),
                  policies=len(self.store.policies))  # fmt: skip
            self.worker.start_initial_sync(initial)
            for index in range(settings.workers):
                nursery.start_soon(self.worker_task, index)
            nursery.start_soon(resync_forever, self.worker, settings.resync_period)
            await self.worker.initial_done.wait()
            self.health.synced = True  # the store is complete, every local pod was visited, the workers run
            self.observer.ready(True)
            event(log, logging.INFO, "ready", adopted=len(initial), policed=self.worker.policed_count())
            task_status.started()


async def _until_signal(cancel: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            event(log, logging.INFO, "stopping", signal=signal.Signals(signum).name, rules="left in place")
            cancel.cancel()
            return


async def run(settings: Settings, observer: Observer | None = None) -> None:
    """Run the daemon until SIGTERM/SIGINT. Configuration errors raise ``ConfigError`` and a kernel below
    ``netlink_nft.KERNEL_FLOOR`` raises ``KernelTooOld``, before anything starts."""
    daemon = Daemon(settings, observer)
    kernel = await trio.to_thread.run_sync(nl.require_supported_kernel)  # KernelTooOld below the floor
    event(log, logging.INFO, "kernel", release=kernel.release, batch_end_ack=kernel.end_ack,
          destroy=kernel.destroy)  # fmt: skip
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signal, nursery.cancel_scope)
        await daemon.run()
    event(log, logging.INFO, "stopped")
