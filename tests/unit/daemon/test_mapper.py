"""The mapper: each kind of change -> exactly the local pods whose ruleset may change (real ClusterStore)."""

from __future__ import annotations

import itertools
from typing import Any

from trinet.daemon.mapper import Mapper
from trinet.kube import Change, ClusterStore
from trinet.objects import (
    LabelSelector,
    MultiNetworkPolicy,
    MultiNetworkPolicyIngressRule,
    MultiNetworkPolicyPeer,
    MultiNetworkPolicySpec,
    Namespace,
    NetworkAttachmentDefinition,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
)

NODE = "here"
_rv = itertools.count(1)


def pod(ns: str, name: str, labels: dict[str, str], node: str = NODE, ip: str = "10.0.0.1") -> Pod:
    status = f'[{{"name": "{ns}/net", "interface": "net1", "ips": ["{ip}"]}}]'
    meta = ObjectMeta(name=name, namespace=ns, labels=labels, resource_version=str(next(_rv)),
                      annotations={"k8s.v1.cni.cncf.io/network-status": status})  # fmt: skip
    return Pod(metadata=meta, spec=PodSpec(node_name=node), status=PodStatus(phase="Running"))


def namespace(name: str, labels: dict[str, str]) -> Namespace:
    return Namespace(metadata=ObjectMeta(name=name, labels=labels, resource_version=str(next(_rv))))


def policy(ns: str, name: str, subjects: dict[str, str], peer: MultiNetworkPolicyPeer) -> MultiNetworkPolicy:
    spec = MultiNetworkPolicySpec(
        pod_selector=LabelSelector(match_labels=subjects),
        ingress=[MultiNetworkPolicyIngressRule(from_=[peer])],
    )
    meta = ObjectMeta(name=name, namespace=ns, resource_version=str(next(_rv)),
                      annotations={"k8s.v1.cni.cncf.io/policy-for": "net"})  # fmt: skip
    return MultiNetworkPolicy(metadata=meta, spec=spec)


def peer(pods: dict[str, str] | None = None, namespaces: dict[str, str] | None = None) -> MultiNetworkPolicyPeer:
    return MultiNetworkPolicyPeer(
        pod_selector=LabelSelector(match_labels=pods) if pods is not None else None,
        namespace_selector=LabelSelector(match_labels=namespaces) if namespaces is not None else None,
    )


def apply(store: ClusterStore, obj: Any) -> Change[Any]:
    resource = {Pod: store.pods, Namespace: store.namespaces, MultiNetworkPolicy: store.policies,
                NetworkAttachmentDefinition: store.nads}[type(obj)]  # fmt: skip
    change = resource.upsert(obj)
    assert change is not None
    return change


def cluster() -> tuple[ClusterStore, Mapper]:
    store = ClusterStore()
    apply(store, namespace("a", {"team": "x"}))
    apply(store, namespace("b", {"team": "y"}))
    apply(store, pod("a", "web", {"app": "web"}))
    apply(store, pod("a", "web-remote", {"app": "web"}, node="elsewhere"))
    apply(store, pod("a", "db", {"app": "db"}))
    apply(store, pod("b", "web", {"app": "web"}))
    return store, Mapper(store, NODE)


def test_a_policy_affects_the_local_pods_it_selects_before_and_after() -> None:
    store, mapper = cluster()
    created = apply(store, policy("a", "p", {"app": "web"}, peer(pods={"app": "db"})))
    assert mapper.affected(created) == {"a/web"}
    changed = apply(store, policy("a", "p", {"app": "db"}, peer(pods={"app": "db"})))
    assert mapper.affected(changed) == {"a/web", "a/db"}  # the old subjects lose their rules
    deleted = store.policies.delete("a/p")
    assert deleted is not None
    assert mapper.affected(deleted) == {"a/db"}


def test_a_peer_label_change_affects_subjects_of_policies_matching_old_or_new_labels() -> None:
    store, mapper = cluster()
    apply(store, policy("a", "from-db", {"app": "web"}, peer(pods={"app": "db"})))
    apply(store, policy("a", "from-cache", {"app": "db"}, peer(pods={"app": "cache"})))
    became_cache = apply(store, pod("a", "db", {"app": "cache"}))
    assert mapper.affected(became_cache) == {"a/db", "a/web"}  # itself, and the subjects of both policies


def test_a_new_pod_in_a_namespace_selected_only_by_namespace_selector() -> None:
    store, mapper = cluster()
    apply(store, policy("a", "from-team-y", {"app": "web"}, peer(namespaces={"team": "y"})))
    added = apply(store, pod("b", "newcomer", {"any": "thing"}, node="elsewhere"))
    assert mapper.affected(added) == {"a/web"}  # the Go peer misses this case (§1.2)


def test_a_namespace_relabel_affects_policies_whose_namespace_selector_matches_old_or_new() -> None:
    store, mapper = cluster()
    apply(store, policy("a", "from-team-z", {"app": "db"}, peer(namespaces={"team": "z"})))
    apply(store, policy("a", "from-team-y", {"app": "web"}, peer(namespaces={"team": "y"})))
    relabelled = apply(store, namespace("b", {"team": "z"}))
    assert mapper.affected(relabelled) == {"a/db", "a/web"}
    same_labels = apply(store, namespace("b", {"team": "z"}))
    assert mapper.affected(same_labels) == set()


def test_a_change_no_policy_reads_affects_only_the_pod_itself() -> None:
    store, mapper = cluster()
    apply(store, policy("a", "from-db", {"app": "web"}, peer(pods={"app": "db"})))
    old = store.pods.get("a/db")
    assert old is not None
    touched = apply(store, Pod(metadata=ObjectMeta(**{**_meta(old), "resource_version": "999"}),
                               spec=old.spec, status=old.status))  # fmt: skip
    assert mapper.affected(touched) == {"a/db"}
    moved_ip = apply(store, pod("a", "db", {"app": "db"}, ip="10.0.0.2"))
    assert mapper.affected(moved_ip) == {"a/db", "a/web"}


def test_a_nad_change_affects_every_local_pod() -> None:
    store, mapper = cluster()
    nad = NetworkAttachmentDefinition(metadata=ObjectMeta(name="net", namespace="a", resource_version="1"))
    assert mapper.affected(apply(store, nad)) == {"a/web", "a/db", "b/web"}


def _meta(p: Pod) -> dict[str, Any]:
    m = p.metadata
    return {"name": m.name, "namespace": m.namespace, "labels": m.labels, "annotations": m.annotations}
