"""The daemon's Prometheus metrics: every family, its labels and meaning, defined once in ``FAMILIES``.

``Metrics`` owns a private ``CollectorRegistry``. Counters and histograms are updated as the daemon reports its
work (``trinet.observability.observer``); gauges of state (policed pods, rules and set elements per pod, dropped
packets, watch staleness) are computed at scrape time from the daemon's own state, in the daemon's trio thread
(the scrape is served there, ``trinet.observability.serve``), so nothing is copied on the hot path.

Label values are bounded: kinds, outcomes and reasons come from fixed vocabularies (anything else is counted as
``other``), resources are the four watched ones, and the only open-ended labels (``namespace``, ``pod``,
``interface``) are bounded by the pods of this node; ``per_pod=False`` drops ``namespace`` and ``pod`` for large
nodes (per-pod gauges then report node totals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trinet.kube import ReflectorHealth
from trinet.policy import PodRuleset

__all__ = [
    "FAILURE_REASONS",
    "FAMILIES",
    "NETNS_REASONS",
    "OUTCOMES",
    "TRANSACTION_KINDS",
    "Family",
    "Metrics",
    "failure_category",
]

TRANSACTION_KINDS = ("create", "delta", "swap", "repair", "remove")
OUTCOMES = ("ok", "rejected", "unknown", "error")
FAILURE_REASONS = ("netns", "rejected", "unknown", "error", "read-back", "other")
NETNS_REASONS = ("procfs", "no-process", "own-netns", "missing-interfaces", "gone", "changed", "other")
RESOURCES = ("pods", "namespaces", "policies", "nads")
EVENT_REASONS = ("InvalidPolicy", "PolicyNetworkMissing", "PolicyNetworkUnsupported", "MalformedAnnotation")
DIRECTIONS = ("ingress", "egress")

APPLY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROGRAMMING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
POD_LABELS = ("namespace", "pod")


@dataclass(frozen=True)
class Family:
    """One documented metric family. ``labels`` as exposed with per-pod labels on; ``cardinality`` states the
    bound of its series."""

    name: str
    type: Literal["counter", "gauge", "histogram"]
    labels: tuple[str, ...]
    help: str
    cardinality: str


FAMILIES: tuple[Family, ...] = (
    Family("trinet_policed_pods", "gauge", (), "Local pods whose nftables table trinet currently enforces.", "1"),
    Family(
        "trinet_pod_rules", "gauge", POD_LABELS,
        "nftables rules in the pod's installed table (node total without per-pod labels).",
        "local policed pods (<= max pods per node); 1 without per-pod labels",
    ),
    Family(
        "trinet_pod_set_elements", "gauge", POD_LABELS,
        "Elements of the named sets in the pod's installed table (node total without per-pod labels).",
        "local policed pods; 1 without per-pod labels",
    ),
    Family(
        "trinet_transactions_total", "counter", ("kind", "outcome"),
        "nf_tables transactions sent, by kind (create, delta, swap, repair, remove) and outcome (ok, rejected, "
        "unknown, error).", "5 x 4 = 20",
    ),
    Family(
        "trinet_failures_total", "counter", ("reason",),
        "Failed attempts to bring a pod to its desired rules (retried with backoff), by reason (netns, rejected, "
        "unknown, error, read-back, other).", "6",
    ),
    Family(
        "trinet_apply_duration_seconds", "histogram", (),
        "Time one transaction took in the kernel, from send to confirmed commit.", f"{len(APPLY_BUCKETS) + 3}",
    ),
    Family(
        "trinet_network_programming_duration_seconds", "histogram", (),
        "Time from a change making a pod dirty (API event, resync) to its rules being in place, queueing "
        "included: the role of OVN-Kubernetes' network_programming_duration_seconds.",
        f"{len(PROGRAMMING_BUCKETS) + 3}",
    ),
    Family("trinet_queue_depth", "gauge", (), "Pods waiting in the dirty queue (sampled as workers take one).", "1"),
    Family(
        "trinet_drift_repairs_total", "counter", (),
        "Tables found differing from what trinet installed (hand edits, flushes) and repaired.", "1",
    ),
    Family(
        "trinet_adoptions_total", "counter", ("result",),
        "Tables read back and adopted (start-up, resync, unknown outcome): unchanged, or repaired by a transaction.",
        "2",
    ),
    Family(
        "trinet_netns_resolution_failures_total", "counter", ("reason",),
        "A pod's network namespace could not be found or used, by reason (procfs, no-process, own-netns, "
        "missing-interfaces, gone, changed, other).", "7",
    ),
    Family(
        "trinet_invalid_policies_total", "counter", (),
        "Policy versions with validation errors (invalid items ignored, isolation kept).", "1",
    ),
    Family(
        "trinet_dropped_packets_total", "counter", ("namespace", "pod", "interface", "direction"),
        "Packets dropped by isolation (the counter on each per-interface chain's final drop), read at every "
        "table read-back (resync); without per-pod labels only interface and direction.",
        "local policed pods x their policed interfaces x 2; without per-pod labels: interface names x 2",
    ),
    Family(
        "trinet_watch_staleness_seconds", "gauge", ("resource",),
        "Seconds since the reflector of the resource (pods, namespaces, policies, nads) last received anything.",
        "4",
    ),
    Family("trinet_watch_synced", "gauge", ("resource",), "1 once the reflector has listed, 0 while relisting.", "4"),
    Family("trinet_watch_relists_total", "counter", ("resource",), "Relists of the reflector of the resource.", "4"),
    Family(
        "trinet_events_total", "counter", ("reason",),
        "Kubernetes Events handed to the Event writer, by reason (InvalidPolicy, PolicyNetworkMissing, "
        "PolicyNetworkUnsupported, MalformedAnnotation).", "4",
    ),
    Family("trinet_ready", "gauge", (), "1 when the daemon is ready (initial sync done, workers alive).", "1"),
)  # fmt: skip
_BY_NAME = {f.name: f for f in FAMILIES}


def failure_category(reason: str) -> str:
    """The bounded label of a failure reason as the daemon words it (``netns: gone``, ``error: KeyError``)."""
    head = reason.split(":", 1)[0].strip()
    return head if head in FAILURE_REASONS else "other"


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else "other"


def _help(name: str) -> str:
    return _BY_NAME[name].help


def _split(pod: str) -> tuple[str, str]:
    namespace, _, name = pod.partition("/")
    return namespace, name


InstalledSource = Callable[[], Iterable[tuple[str, PodRuleset]]]
HealthSource = Callable[[], Mapping[str, ReflectorHealth]]


class _DropCounts:
    """Monotonic totals from the kernel's drop counters. A counter restarts at 0 whenever its rule is written anew
    (every transaction but a set-element delta flushes and refills the chains): ``rules_rewritten`` says so, and
    the next reading then counts in full; a reading below the previous one is taken as a restart too. (Drops that
    a rule counted after the last read-back and before it was rewritten are not seen.)"""

    def __init__(self) -> None:
        self.last: dict[str, dict[tuple[str, str], int]] = {}
        self.total: dict[str, dict[tuple[str, str], int]] = {}

    def update(self, pod: str, readings: Mapping[tuple[str, str], int]) -> None:
        last = self.last.setdefault(pod, {})
        total = self.total.setdefault(pod, {})
        for where, value in readings.items():
            previous = last.get(where, 0)
            total[where] = total.get(where, 0) + (value - previous if value >= previous else value)
        self.last[pod] = dict(readings)

    def rules_rewritten(self, pod: str) -> None:
        self.last.pop(pod, None)

    def forget_except(self, pods: set[str]) -> None:
        for gone in set(self.total) - pods:
            del self.total[gone]
            self.last.pop(gone, None)


class Metrics:
    """The registry and every family of ``FAMILIES``. ``attach`` gives the scrape-time sources."""

    def __init__(self, *, per_pod: bool = True) -> None:
        self.per_pod = per_pod
        # process-wide: `_created` series would be families of their own in the text format
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.transactions = Counter(
            "trinet_transactions", _help("trinet_transactions_total"), ("kind", "outcome"), registry=r
        )
        self.failures = Counter("trinet_failures", _help("trinet_failures_total"), ("reason",), registry=r)
        self.apply = Histogram(
            "trinet_apply_duration_seconds", _help("trinet_apply_duration_seconds"), buckets=APPLY_BUCKETS, registry=r
        )
        self.programming = Histogram(
            "trinet_network_programming_duration_seconds",
            _help("trinet_network_programming_duration_seconds"),
            buckets=PROGRAMMING_BUCKETS,
            registry=r,
        )
        self.queue = Gauge("trinet_queue_depth", _help("trinet_queue_depth"), registry=r)
        self.drift = Counter("trinet_drift_repairs", _help("trinet_drift_repairs_total"), registry=r)
        self.adoptions = Counter("trinet_adoptions", _help("trinet_adoptions_total"), ("result",), registry=r)
        self.netns = Counter(
            "trinet_netns_resolution_failures", _help("trinet_netns_resolution_failures_total"), ("reason",), registry=r
        )
        self.invalid = Counter("trinet_invalid_policies", _help("trinet_invalid_policies_total"), registry=r)
        self.events = Counter("trinet_events", _help("trinet_events_total"), ("reason",), registry=r)
        self.ready = Gauge("trinet_ready", _help("trinet_ready"), registry=r)
        for kind in TRANSACTION_KINDS:  # every series exists from the start: rate() needs a zero to begin with
            for outcome in OUTCOMES:
                self.transactions.labels(kind, outcome)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)
        for reason in NETNS_REASONS:
            self.netns.labels(reason)
        for result in ("unchanged", "repaired"):
            self.adoptions.labels(result)
        for reason in EVENT_REASONS:
            self.events.labels(reason)
        self.drops = _DropCounts()
        self._installed: InstalledSource = lambda: ()
        self._health: HealthSource = dict
        r.register(_StateCollector(self))

    def attach(self, installed: InstalledSource, health: HealthSource) -> None:
        """Scrape-time sources: (pod, installed ruleset) of every policed local pod, and the reflectors' health."""
        self._installed, self._health = installed, health

    # -- updates (the observer calls these) ----------------------------------------------------------------

    def transaction(self, pod: str, kind: str, outcome: str) -> None:
        self.transactions.labels(_bounded(kind, TRANSACTION_KINDS), _bounded(outcome, OUTCOMES)).inc()
        if outcome == "ok" and kind != "delta":
            self.drops.rules_rewritten(pod)

    def failure(self, reason: str) -> None:
        self.failures.labels(failure_category(reason)).inc()

    def netns_failure(self, reason: str) -> None:
        self.netns.labels(_bounded(reason, NETNS_REASONS)).inc()

    def event(self, reason: str) -> None:
        if reason in EVENT_REASONS:
            self.events.labels(reason).inc()

    def dropped(self, pod: str, readings: Mapping[tuple[str, str], int]) -> None:
        """The drop counters of one pod's table as read back: ``{(interface, direction): packets}``."""
        self.drops.update(pod, readings)

    def exposition(self) -> bytes:
        """The text exposition format (prometheus-client's own writer)."""
        return generate_latest(self.registry)

    # -- scrape-time state ---------------------------------------------------------------------------------

    def collect_state(self) -> Iterator[Metric]:
        per_pod = self.per_pod
        labels = list(POD_LABELS) if per_pod else []
        rules = GaugeMetricFamily("trinet_pod_rules", _help("trinet_pod_rules"), labels=labels)
        elements = GaugeMetricFamily("trinet_pod_set_elements", _help("trinet_pod_set_elements"), labels=labels)
        installed = list(self._installed())
        total_rules = total_elements = 0
        for pod, ruleset in sorted(installed):
            n_rules = sum(len(c.rules) for c in ruleset.table.chains)
            n_elements = sum(len(s.elements) for s in ruleset.table.sets)
            total_rules += n_rules
            total_elements += n_elements
            if per_pod:
                rules.add_metric(list(_split(pod)), n_rules)
                elements.add_metric(list(_split(pod)), n_elements)
        if not per_pod:
            rules.add_metric([], total_rules)
            elements.add_metric([], total_elements)
        yield GaugeMetricFamily("trinet_policed_pods", _help("trinet_policed_pods"), value=len(installed))
        yield rules
        yield elements
        self.drops.forget_except({pod for pod, _ in installed})
        drop_labels = ["namespace", "pod", "interface", "direction"] if per_pod else ["interface", "direction"]
        drops = CounterMetricFamily("trinet_dropped_packets", _help("trinet_dropped_packets_total"), labels=drop_labels)
        node: dict[tuple[str, str], int] = {}
        for pod, counts in sorted(self.drops.total.items()):
            for (ifname, direction), value in sorted(counts.items()):
                if per_pod:
                    drops.add_metric([*_split(pod), ifname, direction], value)
                else:
                    node[ifname, direction] = node.get((ifname, direction), 0) + value
        for (ifname, direction), value in sorted(node.items()):
            drops.add_metric([ifname, direction], value)
        yield drops
        health = self._health()
        stale = GaugeMetricFamily(
            "trinet_watch_staleness_seconds", _help("trinet_watch_staleness_seconds"), labels=["resource"]
        )
        synced = GaugeMetricFamily("trinet_watch_synced", _help("trinet_watch_synced"), labels=["resource"])
        relists = CounterMetricFamily("trinet_watch_relists", _help("trinet_watch_relists_total"), labels=["resource"])
        for resource in RESOURCES:
            h = health.get(resource)
            if h is None:
                continue
            stale.add_metric([resource], h.seconds_since_last_event)
            synced.add_metric([resource], 1.0 if h.synced else 0.0)
            relists.add_metric([resource], h.relists)
        yield stale
        yield synced
        yield relists


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self.metrics.collect_state())

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on the sources; describing would call them at registration
