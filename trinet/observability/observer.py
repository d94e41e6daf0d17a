"""``MetricsObserver``: the daemon's ``Observer`` (trinet.daemon.observer) feeding ``Metrics``, and
``run_observability``, the task that serves ``/metrics`` and reports Events while the daemon runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import trio

from trinet.daemon.observer import TransactionKind, TransactionOutcome
from trinet.kube import ClusterStore
from trinet.objects import MultiNetworkPolicy, Pod
from trinet.observability.events import EventSink, Reporter
from trinet.observability.metrics import Metrics
from trinet.observability.serve import serve_metrics
from trinet.policy import PodRuleset, Snapshot

__all__ = ["MetricsObserver", "run_observability"]


class MetricsObserver:
    """Implements ``trinet.daemon.observer.Observer``; every method is a counter or gauge update (never raises)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def transaction(self, pod: str, kind: TransactionKind, outcome: TransactionOutcome, messages: int) -> None:
        self.metrics.transaction(kind, outcome)

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
        self.metrics.policed.set(count)

    def ready(self, ready: bool) -> None:
        self.metrics.ready.set(1 if ready else 0)

    def dropped(self, pod: str, counters: Mapping[tuple[str, str], int]) -> None:
        """The drop counters read back from the pod's table (``trinet.policy.to_netlink.drop_counters``)."""
        self.metrics.dropped(pod, counters)


def _lookup(store: ClusterStore) -> Callable[[str, str], MultiNetworkPolicy | Pod | None]:
    def lookup(resource: str, key: str) -> MultiNetworkPolicy | Pod | None:
        return store.policies.get(key) if resource == "policies" else store.pods.get(key)

    return lookup


async def run_observability(
    observer: MetricsObserver,
    *,
    store: ClusterStore,
    installed: Callable[[], Iterable[tuple[str, PodRuleset]]],
    snapshots: Callable[[], Snapshot],
    events: EventSink | None,
    node: str,
    network_plugins: Iterable[str],
    metrics_address: tuple[str, int] | None,
    task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` (when an address is given) and report Events (when a sink is given) until cancelled.
    ``task_status.started(port)`` once listening."""
    metrics = observer.metrics
    metrics.attach(installed, store.health)
    async with trio.open_nursery() as nursery:
        port: int | None = None
        if metrics_address is not None:
            port = await nursery.start(serve_metrics, metrics_address, metrics)
        if events is not None:
            reporter = Reporter(events, metrics, _lookup(store))
            nursery.start_soon(reporter.run, snapshots, node, tuple(network_plugins))
        task_status.started(port)
