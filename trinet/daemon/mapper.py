"""Which local pods a change of the cluster affects: the only place that answers "what happens when X changes".

A local pod is one whose ``spec.nodeName`` is this node. For each kind of change:

- **Pod** (added, changed or deleted): the pod itself if it is local; and, if anything a policy reads of it as a
  *peer* changed (labels, addresses, phase, hostNetwork, container ports), the subjects of every policy with a
  selector peer that matches the old *or* the new pod (namespace labels included, namespaceSelector-only peers
  too), and of every policy with an egress named port (its owners are any pod on the network).
- **Namespace** (labels added, changed or gone): the subjects of every policy whose namespaceSelector peers match
  the old or the new labels.
- **MultiNetworkPolicy**: the local pods of its namespace that the old or the new version selects (an invalid
  podSelector selects every pod of the namespace: it isolates them).
- **NetworkAttachmentDefinition**: every local pod (a NAD's type decides which interfaces are policed; rare).

Over-approximation is safe: a pod that did not need work costs one compile and no transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trinet.kube import Change, ClusterStore
from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod
from trinet.policy import validate_policy
from trinet.policy.model import Direction, EffectivePolicy, SelectorPeer
from trinet.policy.snapshot import pod_key

__all__ = ["Mapper"]

_PEER_ANNOTATIONS = ("k8s.v1.cni.cncf.io/network-status", "k8s.v1.cni.cncf.io/networks")


def _peer_view(pod: Pod) -> tuple[object, ...]:
    """Everything a policy reads of a pod as a peer; equal views mean the change matters only to the pod itself."""
    ann = pod.metadata.annotations
    ports = tuple(
        (p.name, p.protocol, p.container_port) for c in pod.spec.containers or () for p in c.ports or () if p.name
    )
    return (
        tuple(sorted(pod.metadata.labels.items())),
        tuple(ann.get(a) for a in _PEER_ANNOTATIONS),
        pod.status.phase,
        pod.spec.host_network,
        ports,
    )


def _selector_peers(policy: EffectivePolicy) -> Iterable[SelectorPeer]:
    for direction in Direction:
        for rule in policy.rules(direction):
            for peer in rule.peers or ():
                if isinstance(peer, SelectorPeer):
                    yield peer


def _has_egress_named_port(policy: EffectivePolicy) -> bool:
    return any(item.name is not None for rule in policy.egress for item in rule.ports or ())


class Mapper:
    """Turns ``Change`` records into the keys of the local pods to recompute. Reads the store, writes nothing."""

    def __init__(self, store: ClusterStore, node_name: str) -> None:
        self.store = store
        self.node_name = node_name
        self._effective: dict[str, tuple[MultiNetworkPolicy, EffectivePolicy]] = {}

    def effective(self, policy: MultiNetworkPolicy) -> EffectivePolicy:
        """The validated policy, memoised per object (the store keeps unchanged objects identical)."""
        key = f"{policy.metadata.namespace}/{policy.metadata.name}"
        found = self._effective.get(key)
        if found is not None and found[0] is policy:
            return found[1]
        effective = validate_policy(policy)
        if self.store.policies.get(key) is policy:
            self._effective[key] = (policy, effective)
        return effective

    def affected(self, change: Change[Any]) -> set[str]:
        obj = change.new if change.new is not None else change.old
        if isinstance(obj, Pod):
            return self._pod_changed(change.old, change.new)
        if isinstance(obj, Namespace):
            return self._namespace_changed(change.old, change.new)
        if isinstance(obj, MultiNetworkPolicy):
            if change.new is None:
                self._effective.pop(change.key, None)
            return self._policy_changed(change.old, change.new)
        if isinstance(obj, NetworkAttachmentDefinition):
            return self.all_local()
        return set()

    # -- helpers -------------------------------------------------------------------------------------------------

    def all_local(self) -> set[str]:
        return {pod_key(p) for p in self.store.pods.by_node(self.node_name)}

    def subjects(self, policy: EffectivePolicy) -> set[str]:
        """Local pods of the policy's namespace that it selects (all of them when its podSelector is invalid)."""
        return {
            pod_key(p)
            for p in self.store.pods.by_namespace(policy.namespace)
            if p.spec.node_name == self.node_name
            and (policy.subjects is None or policy.subjects.matches(p.metadata.labels))
        }

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        ns = self.store.namespaces.get(namespace)
        return ns.metadata.labels if ns is not None else {}

    def _pod_changed(self, old: Pod | None, new: Pod | None) -> set[str]:
        out: set[str] = set()
        for pod in (old, new):
            if pod is not None and pod.spec.node_name == self.node_name:
                out.add(pod_key(pod))
        if old is not None and new is not None and _peer_view(old) == _peer_view(new):
            return out
        pods = [p for p in (old, new) if p is not None]
        for policy_obj in self.store.policies.values():
            policy = self.effective(policy_obj)
            if _has_egress_named_port(policy) or any(
                self._peer_matches(policy, peer, pods) for peer in _selector_peers(policy)
            ):
                out |= self.subjects(policy)
        return out

    def _peer_matches(self, policy: EffectivePolicy, peer: SelectorPeer, pods: list[Pod]) -> bool:
        for pod in pods:
            ns = pod.metadata.namespace
            if peer.namespaces is None:
                if ns != policy.namespace:
                    continue
            elif not peer.namespaces.matches(self._namespace_labels(ns)):
                continue
            if peer.pods is None or peer.pods.matches(pod.metadata.labels):
                return True
        return False

    def _namespace_changed(self, old: Namespace | None, new: Namespace | None) -> set[str]:
        if old is not None and new is not None and old.metadata.labels == new.metadata.labels:
            return set()
        labels = [ns.metadata.labels for ns in (old, new) if ns is not None]
        out: set[str] = set()
        for policy_obj in self.store.policies.values():
            policy = self.effective(policy_obj)
            for peer in _selector_peers(policy):
                if peer.namespaces is not None and any(peer.namespaces.matches(lab) for lab in labels):
                    out |= self.subjects(policy)
                    break
        return out

    def _policy_changed(self, old: MultiNetworkPolicy | None, new: MultiNetworkPolicy | None) -> set[str]:
        out: set[str] = set()
        for policy in (old, new):
            if policy is not None:
                out |= self.subjects(validate_policy(policy) if policy is old else self.effective(policy))
        return out
