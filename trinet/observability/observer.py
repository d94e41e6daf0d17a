"""``MetricsObserver``: the daemon's ``Observer`` (trinet.daemon.observer) feeding ``Metrics``, and
``run_observability``, the task that serves ``/metrics`` and reports Events while the daemon runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING

import trio

from trinet.daemon.observer import TransactionKind, TransactionOutcome
from trinet.daemon.worker import PodState
from trinet.kube import ApiClient, ClusterStore, EventWriter
from trinet.objects import MultiNetworkPolicy, Pod
from trinet.observability.events import Reporter
from trinet.observability.metrics import Metrics
from trinet.observability.serve import serve_metrics
from trinet.policy import PodRuleset

if TYPE_CHECKING:
    from trinet.daemon.daemon import Daemon

__all__ = ["MetricsObserver", "installed_rulesets", "run_observability"]


class MetricsObserver:
    """Implements ``trinet.daemon.observer.Observer``; every method is a counter or gauge update (never raises)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def transaction(self, pod: str, kind: TransactionKind, outcome: TransactionOutcome, messages: int) -> None:
        self.metrics.transaction(pod, kind, outcome)

    def apply_latency(self, pod: str, seconds: float) -> None:
        self.metrics.apply.observe(seconds)

    def enforced_latency(self, pod: str, seconds: float) -> None:
        self.metrics.programming.observe(seconds)

    def failure(self, pod: str, reason: str) -> None:
        self.metrics.failure(reason)

    def netns_failure(self, pod: str, reason: str) -> None:
        self.metrics.netns_failure(reason)

    def drift_repaired(self, pod: str) -> None:
        self.metrics.drift.inc()

    def adopted(self, pod: str, unchanged: bool) -> None:
        self.metrics.adoptions.labels("unchanged" if unchanged else "repaired").inc()

    def queue_depth(self, depth: int) -> None:
        self.metrics.queue.set(depth)

    def invalid_policy(self, policy: str, reasons: tuple[str, ...]) -> None:
        self.metrics.invalid.inc()  # the Event comes from the Reporter's audit (it knows which node reports)

    def policed_pods(self, count: int) -> None:
        """Nothing to do: ``trinet_policed_pods`` is counted at scrape time from the tables the daemon holds, so it
        also drops when a pod goes away without a transaction."""

    def ready(self, ready: bool) -> None:
        self.metrics.ready.set(1 if ready else 0)

    def dropped(self, pod: str, counters: Mapping[tuple[str, str], int]) -> None:
        """The drop counters read back from the pod's table (``trinet.policy.to_netlink.drop_counters``)."""
        self.metrics.dropped(pod, counters)


def _lookup(store: ClusterStore) -> Callable[[str, str], MultiNetworkPolicy | Pod | None]:
    def lookup(resource: str, key: str) -> MultiNetworkPolicy | Pod | None:
        return store.policies.get(key) if resource == "policies" else store.pods.get(key)

    return lookup


def installed_rulesets(states: Mapping[str, PodState]) -> Iterator[tuple[str, PodRuleset]]:
    """(pod, ruleset) of every pod whose table the daemon believes it installed."""
    for key, state in list(states.items()):
        if state.installed is not None:
            yield key, state.installed.ruleset


async def run_observability(
    daemon: Daemon, api: ApiClient, *, task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While the daemon runs: serve ``/metrics`` on ``--metrics-bind-address`` (``task_status.started(port)`` once
    listening, None when disabled), and once the initial sync is done (the store complete, so that nothing is
    reported missing only because it was not listed yet) report Events for what trinet ignores."""
    observer = daemon.observer
    if not isinstance(observer, MetricsObserver):
        task_status.started(None)
        return
    settings = daemon.settings
    metrics = observer.metrics
    metrics.attach(partial(installed_rulesets, daemon.worker.states), daemon.store.health)
    async with trio.open_nursery() as nursery:
        port: int | None = None
        if settings.metrics_address is not None:
            port = await nursery.start(serve_metrics, settings.metrics_address, metrics)
        task_status.started(port)
        await daemon.worker.initial_done.wait()
        writer = EventWriter(api, component="trinet", host=settings.node_name)
        reporter = Reporter(writer, metrics, _lookup(daemon.store))
        await reporter.run(daemon.snapshots.current, settings.node_name, settings.network_plugins)
