"""Metrics: every documented family is exposed, parses with prometheus-client's own parser, and moves as observed."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.unit.policy.builders import nad, namespace, pod, policy
from trinet.kube import ReflectorHealth
from trinet.observability.metrics import FAMILIES, Metrics, failure_category
from trinet.observability.observer import MetricsObserver
from trinet.policy import CompileOptions, PodRuleset, Snapshot, compile

S = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
A = pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ["10.1.0.2"])])
DENY = policy("ns/deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
SNAPSHOT = Snapshot([S, A], [namespace("ns")], [DENY], [nad("ns/net1")])
RULESETS = {"ns/s": compile(SNAPSHOT, S, CompileOptions()), "ns/a": compile(SNAPSHOT, A, CompileOptions())}
HEALTH = {
    "pods": ReflectorHealth(True, 1.5, 0),
    "namespaces": ReflectorHealth(True, 2.0, 1),
    "policies": ReflectorHealth(False, 0.25, 3),
    "nads": ReflectorHealth(True, 9.0, 0),
}


def scrape(metrics: Metrics) -> dict[str, list[Sample]]:
    text = metrics.exposition().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def attached(per_pod: bool = True, rulesets: dict[str, PodRuleset] | None = None) -> Metrics:
    metrics = Metrics(per_pod=per_pod)
    metrics.attach((rulesets if rulesets is not None else RULESETS).items, lambda: HEALTH)
    return metrics


def _exposed_name(name: str, kind: str) -> str:
    """The parser names counter families without ``_total``."""
    return name.removesuffix("_total") if kind == "counter" else name


def test_every_documented_family_is_exposed_with_its_type_and_help() -> None:
    text = attached().exposition().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for doc in FAMILIES:
        exposed = families.get(_exposed_name(doc.name, doc.type))
        assert exposed is not None, f"{doc.name} missing"
        assert exposed.type == doc.type, doc.name
        assert exposed.documentation == doc.help, doc.name
    documented = {_exposed_name(f.name, f.type) for f in FAMILIES}
    assert set(families) == documented, "exposed but not documented: " + ", ".join(set(families) - documented)


def test_documented_labels_are_the_exposed_labels() -> None:
    metrics = attached()
    observer = MetricsObserver(metrics)
    observer.dropped("ns/s", {("net1", "ingress"): 3})
    samples = scrape(metrics)
    for doc in FAMILIES:
        for sample in samples[_exposed_name(doc.name, doc.type)]:
            labels = set(sample.labels) - {"le"}
            assert labels == set(doc.labels), (doc.name, sample)


def test_counters_move_with_what_the_daemon_reports() -> None:
    metrics = attached()
    observer = MetricsObserver(metrics)
    before = scrape(metrics)
    assert value(before["trinet_transactions"], "trinet_transactions_total", kind="swap", outcome="ok") == 0
    observer.transaction("ns/s", "create", "ok", 7)
    observer.transaction("ns/s", "swap", "ok", 9)
    observer.transaction("ns/s", "swap", "rejected", 9)
    observer.failure("ns/s", "rejected")
    observer.failure("ns/s", "netns: gone")
    observer.failure("ns/s", "error: KeyError")
    observer.failure("ns/s", "something new")
    observer.netns_failure("ns/s", "no-process")
    observer.netns_failure("ns/s", "a new word")
    observer.drift_repaired("ns/s")
    observer.adopted("ns/s", unchanged=True)
    observer.apply_latency("ns/s", 0.003)
    observer.enforced_latency("ns/s", 0.2)
    observer.queue_depth(5)
    observer.invalid_policy("ns/deny", ("x",))
    observer.ready(True)
    after = scrape(metrics)
    tx = after["trinet_transactions"]
    assert value(tx, "trinet_transactions_total", kind="create", outcome="ok") == 1
    assert value(tx, "trinet_transactions_total", kind="swap", outcome="ok") == 1
    assert value(tx, "trinet_transactions_total", kind="swap", outcome="rejected") == 1
    failures = after["trinet_failures"]
    assert [value(failures, "trinet_failures_total", reason=r) for r in ("rejected", "netns", "error", "other")] == [
        1,
        1,
        1,
        1,
    ]
    netns = after["trinet_netns_resolution_failures"]
    assert value(netns, "trinet_netns_resolution_failures_total", reason="no-process") == 1
    assert value(netns, "trinet_netns_resolution_failures_total", reason="other") == 1
    assert value(after["trinet_drift_repairs"], "trinet_drift_repairs_total") == 1
    assert value(after["trinet_adoptions"], "trinet_adoptions_total", result="unchanged") == 1
    apply = after["trinet_apply_duration_seconds"]
    assert value(apply, "trinet_apply_duration_seconds_count") == 1
    assert value(apply, "trinet_apply_duration_seconds_bucket", le="0.005") == 1
    assert value(apply, "trinet_apply_duration_seconds_bucket", le="0.0025") == 0
    programming = after["trinet_network_programming_duration_seconds"]
    assert value(programming, "trinet_network_programming_duration_seconds_sum") == 0.2
    assert value(after["trinet_queue_depth"], "trinet_queue_depth") == 5
    assert value(after["trinet_policed_pods"], "trinet_policed_pods") == len(RULESETS)
    assert value(after["trinet_invalid_policies"], "trinet_invalid_policies_total") == 1
    assert value(after["trinet_ready"], "trinet_ready") == 1


def test_label_values_stay_within_their_vocabulary() -> None:
    metrics = attached()
    observer = MetricsObserver(metrics)
    for i in range(100):
        observer.failure("ns/s", f"error: Weird{i}")
        observer.netns_failure("ns/s", f"reason-{i}")
        observer.transaction("ns/s", "delta", "ok", 1)
    samples = scrape(metrics)
    assert len(samples["trinet_failures"]) == 6
    assert len(samples["trinet_netns_resolution_failures"]) == 7
    assert len(samples["trinet_transactions"]) == 20


def test_per_pod_gauges_and_their_node_totals() -> None:
    per_pod = scrape(attached())
    rules = {s.labels["pod"]: s.value for s in per_pod["trinet_pod_rules"]}
    s_rules = sum(len(c.rules) for c in RULESETS["ns/s"].table.chains)
    assert rules == {"s": s_rules, "a": sum(len(c.rules) for c in RULESETS["ns/a"].table.chains)}
    elements = {s.labels["pod"]: s.value for s in per_pod["trinet_pod_set_elements"]}
    assert elements == {"s": sum(len(x.elements) for x in RULESETS["ns/s"].table.sets), "a": elements["a"]}
    totals = scrape(attached(per_pod=False))
    [total] = totals["trinet_pod_rules"]
    assert total.labels == {} and total.value == sum(rules.values())


def test_watch_health_per_resource() -> None:
    samples = scrape(attached())
    assert value(samples["trinet_watch_staleness_seconds"], "trinet_watch_staleness_seconds", resource="nads") == 9
    assert value(samples["trinet_watch_synced"], "trinet_watch_synced", resource="policies") == 0
    assert value(samples["trinet_watch_relists"], "trinet_watch_relists_total", resource="policies") == 3


def test_drop_counters_accumulate_across_kernel_resets_and_vanish_with_the_pod() -> None:
    rulesets = dict(RULESETS)
    metrics = attached(rulesets=rulesets)
    observer = MetricsObserver(metrics)
    observer.dropped("ns/s", {("net1", "ingress"): 3, ("net1", "egress"): 0})
    observer.dropped("ns/s", {("net1", "ingress"): 5, ("net1", "egress"): 1})
    observer.dropped("ns/s", {("net1", "ingress"): 2, ("net1", "egress"): 1})  # table recreated: counts restart
    observer.dropped("ns/a", {("net1", "egress"): 4})
    drops = scrape(metrics)["trinet_dropped_packets"]
    name = "trinet_dropped_packets_total"
    assert value(drops, name, namespace="ns", pod="s", interface="net1", direction="ingress") == 7
    assert value(drops, name, namespace="ns", pod="s", interface="net1", direction="egress") == 1
    assert value(drops, name, namespace="ns", pod="a", interface="net1", direction="egress") == 4
    del rulesets["ns/a"]
    drops = scrape(metrics)["trinet_dropped_packets"]
    assert {s.labels["pod"] for s in drops} == {"s"}


def test_a_rewrite_of_the_rules_restarts_the_kernel_counters() -> None:
    metrics = attached()
    observer = MetricsObserver(metrics)
    observer.dropped("ns/s", {("net1", "ingress"): 10})
    observer.transaction("ns/s", "delta", "ok", 3)  # set elements only: the drop rule and its counter stay
    observer.dropped("ns/s", {("net1", "ingress"): 12})
    observer.transaction("ns/s", "swap", "ok", 30)  # chains flushed and refilled: counters from 0
    observer.dropped("ns/s", {("net1", "ingress"): 15})
    observer.transaction("ns/s", "swap", "rejected", 30)  # nothing applied: the counter goes on
    observer.dropped("ns/s", {("net1", "ingress"): 16})
    drops = scrape(metrics)["trinet_dropped_packets"]
    labels = {"namespace": "ns", "pod": "s", "interface": "net1", "direction": "ingress"}
    assert value(drops, "trinet_dropped_packets_total", **labels) == 12 + 15 + 1


def test_drop_counters_without_per_pod_labels_sum_over_pods() -> None:
    metrics = attached(per_pod=False)
    observer = MetricsObserver(metrics)
    observer.dropped("ns/s", {("net1", "egress"): 2})
    observer.dropped("ns/a", {("net1", "egress"): 4})
    drops = scrape(metrics)["trinet_dropped_packets"]
    assert value(drops, "trinet_dropped_packets_total", interface="net1", direction="egress") == 6


def test_failure_category() -> None:
    assert [failure_category(r) for r in ("netns: own-netns", "read-back", "unknown", "bogus: x")] == [
        "netns",
        "read-back",
        "unknown",
        "other",
    ]


def test_the_readme_documents_every_family_as_defined() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `trinet_")]
    expected = []
    for f in FAMILIES:
        labels = ", ".join(f"`{label}`" for label in f.labels) or "—"
        expected.append(f"| `{f.name}` | {f.type} | {labels} | {f.help} | {f.cardinality} |")
    assert rows == expected
