"""Cost of one /metrics scrape (``Metrics.exposition()``) on a node full of policed pods.

Usage: ``.venv/bin/python benchmarks/bench_metrics_scrape.py``

The per-pod families (rules, set elements, dropped packets) are computed at scrape time from the daemon's state.
Baseline, in the same process: a plain prometheus-client registry holding the same samples as pre-set labelled
Gauges/Counters (what keeping them up to date on every transaction would give), exposed by the same
``generate_latest``. ``x base`` is the scrape time over the baseline's.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from synthetic import synthetic_cluster

from trinet.kube import ReflectorHealth
from trinet.observability.metrics import Metrics
from trinet.policy import PodRuleset, Snapshot, compile

SIZES = [(30, 1_000, 100), (110, 4_000, 400), (250, 10_000, 1_000)]  # pods on the node, pods, policies
REPEAT = 50


def _baseline(rulesets: dict[str, PodRuleset], drops: dict[str, dict[tuple[str, str], int]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    rules = Gauge("trinet_pod_rules", "rules", ("namespace", "pod"), registry=registry)
    elements = Gauge("trinet_pod_set_elements", "elements", ("namespace", "pod"), registry=registry)
    dropped = Counter(
        "trinet_dropped_packets", "drops", ("namespace", "pod", "interface", "direction"), registry=registry
    )
    for key, ruleset in rulesets.items():
        ns, name = key.split("/")
        rules.labels(ns, name).set(sum(len(c.rules) for c in ruleset.table.chains))
        elements.labels(ns, name).set(sum(len(s.elements) for s in ruleset.table.sets))
        for (ifname, direction), value in drops[key].items():
            dropped.labels(ns, name, ifname, direction).inc(value)
    return registry


def _per_scrape(fn: object) -> float:
    assert callable(fn)
    fn()
    start = time.perf_counter()
    for _ in range(REPEAT):
        fn()
    return (time.perf_counter() - start) / REPEAT


def main() -> None:
    health = {r: ReflectorHealth(True, 0.5, 0) for r in ("pods", "namespaces", "policies", "nads")}
    print(f"{'node pods':>9} {'policed':>7} {'samples':>7} | {'per-pod ms':>10} {'x base':>6} | "
          f"{'totals ms':>9} | {'baseline ms':>11} | {'bytes':>7}")  # fmt: skip
    for node_pods, pods, policies in SIZES:
        nodes = pods // node_pods
        cluster = synthetic_cluster(pods, 10, policies, 3, 2, nodes)
        snapshot = Snapshot(cluster.pods, cluster.namespaces, cluster.policies, cluster.nads)
        local = [p for p in cluster.pods if p.spec.node_name == "node0"]
        rulesets = {f"{p.metadata.namespace}/{p.metadata.name}": compile(snapshot, p) for p in local}
        rulesets = {k: r for k, r in rulesets.items() if r.enforces}
        drops = {
            k: {(i, d): 17 for i, _ in r.table.maps[0].entries for d in ("ingress", "egress")}
            for k, r in rulesets.items()
        }
        timings = {}
        for per_pod in (True, False):
            metrics = Metrics(per_pod=per_pod)
            metrics.attach(rulesets.items, lambda: health)
            for key, counts in drops.items():
                metrics.dropped(key, counts)
            timings[per_pod] = _per_scrape(metrics.exposition)
            if per_pod:
                size = len(metrics.exposition())
        base = _per_scrape(partial(generate_latest, _baseline(rulesets, drops)))
        samples = len(rulesets) * 2 + sum(len(c) for c in drops.values())
        print(
            f"{len(local):>9} {len(rulesets):>7} {samples:>7} | {timings[True] * 1000:>10.2f} "
            f"{timings[True] / base:>6.2f} | {timings[False] * 1000:>9.2f} | {base * 1000:>11.2f} | {size:>7}"
        )


if __name__ == "__main__":
    main()
