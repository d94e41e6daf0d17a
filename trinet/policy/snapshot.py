"""A cluster snapshot with the indexes ``compile()`` needs, so that compiling one pod never scans the cluster.

The snapshot is built from immutable inputs; everything derived from them (parsed pods, validated policies, peer
address sets) is memoised on first use. Build a new snapshot when the inputs change; after pod changes only,
``with_pods`` makes it from the previous one at a cost that grows with the change, not with the cluster.
"""

from __future__ import annotations

import bisect
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec
from immutables import Map

from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod
from trinet.policy.annotations import (
    NETWORK_STATUS_ANNOTATION,
    NETWORKS_ANNOTATION,
    is_interface_name,
    parse_cni_config,
    parse_network_status,
    parse_networks,
)
from trinet.policy.elements import Elements
from trinet.policy.ipblock import Interval, merge
from trinet.policy.model import EffectivePolicy, SelectorPeer
from trinet.policy.peer_addresses import Element, PeerAddresses, PeerKey, selects
from trinet.policy.validation import validate_policy

__all__ = ["Attachment", "PodInfo", "Snapshot", "pod_key"]

_NO_PODS: Map[str, Pod] = Map()

_Pair = tuple[int, int]  # (address, port)
_NamedKey = tuple[str, str, str]  # (network, protocol, port name)
_Contribution = tuple[_NamedKey, int, _Pair]  # what a pod puts in the named-port index: (key, family, pair)
# An egress rule's named-port set: (policy namespace, its selector peers or None when the rule has no peers
# field, its ipBlocks (merged, v4 and v6), network, protocol, port names)
NamedEgressKey = tuple[
    str, tuple[SelectorPeer, ...] | None, tuple[tuple[Interval, ...], tuple[Interval, ...]], str, str, tuple[str, ...]
]


def pod_key(pod: Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


class Attachment(msgspec.Struct, frozen=True, gc=False):
    """One secondary-network interface of a pod, as network-status reports it."""

    ifname: str
    network: str  # normalised "ns/name" of the NAD
    cni_type: str | None  # None: NAD missing or its type unknown
    v4: tuple[int, ...]
    v6: tuple[int, ...]


class PodInfo(msgspec.Struct, frozen=True, gc=False):
    """What the policy core needs of a pod, parsed once. Like the API objects (``trinet.objects``) and the policy
    model (``ruleset._V``), it and its attachments are left out of the cyclic collector's work: they hold only
    strings, numbers, tuples and the pod's label mapping, so they cannot be part of a reference cycle."""

    key: str
    namespace: str
    labels: Mapping[str, str]
    attachments: tuple[Attachment, ...]
    is_peer: bool  # Running, not hostNetwork: its addresses count for selector peers (§2.4.22)
    is_subject: bool  # not hostNetwork and not finished: it may be policed (§2.1.4)
    container_ports: tuple[tuple[str, str, int], ...]  # (name, protocol, number)
    problems: tuple[str, ...] = ()

    def addresses(self, network: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        v4: list[int] = []
        v6: list[int] = []
        for att in self.attachments:
            if att.network == network:
                v4.extend(att.v4)
                v6.extend(att.v6)
        return tuple(v4), tuple(v6)


def _parse_pod(pod: Pod, nad_types: Mapping[str, str | None]) -> PodInfo:
    meta = pod.metadata
    problems: list[str] = []
    status_text = meta.annotations.get(NETWORK_STATUS_ANNOTATION)
    entries, errs = parse_network_status(status_text) if status_text else ((), [])
    problems += errs
    selections, errs = parse_networks(meta.annotations.get(NETWORKS_ANNOTATION, ""), meta.namespace)
    problems += errs
    attachments: list[Attachment] = []
    for entry in entries:
        if entry.default:
            continue
        if entry.interface and not is_interface_name(entry.interface):
            problems.append(f"network-status: {entry.interface!r} is not a valid interface name; entry ignored")
            continue
        if "/" in entry.name:
            network = entry.name.strip()
        else:  # un-namespaced status name: learn the namespace from the networks annotation (§2.6.38)
            name = entry.name.strip()
            candidates = [s for s in selections if s.name == name and s.interface in (None, entry.interface)]
            network = candidates[0].ref if candidates else f"{meta.namespace}/{name}"
        attachments.append(Attachment(entry.interface, network, nad_types.get(network), entry.v4, entry.v6))
    by_ifname: dict[str, set[str]] = defaultdict(set)
    for att in attachments:
        if att.ifname:
            by_ifname[att.ifname].add(att.network)
    problems += [
        f"network-status: interface {ifname!r} is reported on several networks ({', '.join(sorted(networks))}); "
        "wherever a policy applies it is isolated with no allow rules"
        for ifname, networks in sorted(by_ifname.items())
        if len(networks) > 1
    ]
    ports = tuple(
        sorted(
            (p.name, p.protocol, p.container_port)
            for c in pod.spec.containers
            for p in c.ports or ()
            if p.name is not None
        )
    )
    return PodInfo(
        key=pod_key(pod),
        namespace=meta.namespace,
        labels=meta.labels,
        attachments=tuple(attachments),
        is_peer=pod.status.phase == "Running" and not pod.spec.host_network,
        is_subject=not pod.spec.host_network and pod.status.phase not in ("Succeeded", "Failed"),
        container_ports=ports,
        problems=tuple(problems),
    )


class Snapshot:
    """Pods, namespaces, policies and NADs of the cluster at one instant, indexed.

    ``previous``: a snapshot of an earlier instant. Parsed pods and validated policies whose API object is the
    *same object* (``is``: the store hands out unchanged objects unchanged) are reused, so that a new snapshot
    after a few events costs little more than its dictionaries.
    """

    def __init__(
        self,
        pods: Iterable[Pod] = (),
        namespaces: Iterable[Namespace] = (),
        policies: Iterable[MultiNetworkPolicy] = (),
        nads: Iterable[NetworkAttachmentDefinition] = (),
        previous: Snapshot | None = None,
    ) -> None:
        parsed = {f"{n.metadata.namespace}/{n.metadata.name}": parse_cni_config(n.spec.config) for n in nads}
        self.nad_types: dict[str, str | None] = {ref: kind for ref, (kind, _) in parsed.items()}
        # Problems of malformed NADs, by "ns/name" (their interfaces are not policed, DECISIONS 2).
        self.nad_problems: dict[str, tuple[str, ...]] = {ref: found for ref, (_, found) in parsed.items() if found}
        self.namespace_labels: dict[str, Mapping[str, str]] = {n.metadata.name: n.metadata.labels for n in namespaces}
        self._namespace_objects = frozenset(self.namespace_labels)  # the others are known from their pods only
        by_key: dict[str, Pod] = {}
        by_ns: dict[str, dict[str, Pod]] = defaultdict(dict)
        for pod in pods:
            key = pod_key(pod)
            by_key[key] = by_ns[pod.metadata.namespace][key] = pod
            self.namespace_labels.setdefault(pod.metadata.namespace, {})
        # Plain dicts here (the fastest to build); ``with_pods`` turns them into persistent maps on first use.
        self.pods: Mapping[str, Pod] = by_key
        self._pods_by_ns: dict[str, Mapping[str, Pod]] = dict(by_ns)
        old_policies = previous._validated if previous is not None else {}
        self._validated: dict[str, tuple[MultiNetworkPolicy, EffectivePolicy]] = {}
        for policy in policies:
            key = f"{policy.metadata.namespace}/{policy.metadata.name}"
            old = old_policies.get(key)
            effective = old[1] if old is not None and old[0] is policy else validate_policy(policy)
            self._validated[key] = (policy, effective)
        self.policies: dict[str, EffectivePolicy] = {k: e for k, (_, e) in self._validated.items()}
        self._policies_by_ns: dict[str, list[EffectivePolicy]] = defaultdict(list)
        for effective in sorted(self.policies.values(), key=lambda p: p.key):
            self._policies_by_ns[effective.namespace].append(effective)
        self._info: dict[str, tuple[Pod, PodInfo]] = {}
        if previous is not None and previous.nad_types == self.nad_types:  # a pod's parse depends on NAD types
            self._info = {k: v for k, v in previous._info.items() if self.pods.get(k) is v[0]}
        self._peer_addresses: dict[PeerKey, PeerAddresses] = {}
        self._selected: dict[tuple[str, SelectorPeer], dict[str, PodInfo]] = {}
        self._peer_infos: dict[str, list[PodInfo]] = {}
        self._label_index: dict[str, dict[tuple[str, str], list[PodInfo]]] = {}
        self._named: dict[_NamedKey, tuple[list[_Pair], list[_Pair]]] | None = None
        self._named_egress: dict[NamedEgressKey, tuple[Elements[Element], Elements[Element]]] = {}
        self.memo: dict[object, object] = {}  # compile()'s per-snapshot cache of policy-level results

    def with_pods(self, changed: Mapping[str, Pod | None]) -> Snapshot:
        """This snapshot with the pods of ``changed`` (by "ns/name") replaced, or deleted where None; namespaces,
        policies and NADs the same. What it costs grows with the change (times the number of memoised peer
        sets), not with the cluster: the pod maps are persistent, selector peers' addresses are patched
        (``PeerAddresses.patched``, chunked elements), everything else ``compile`` derives is rebuilt on first
        use. A pod in a namespace the snapshot did not know gets the labels ``{}``, as in the constructor.

        The two snapshots share the parsed-pod memo (its entries are checked by identity of the pod object) and
        ``self``'s pod dictionaries become persistent maps of the same content, so both stay correct if both are
        used. Raises ``ValueError`` for a pod given under another key."""
        for key, pod in changed.items():
            if pod is not None and pod_key(pod) != key:
                raise ValueError(f"pod {pod_key(pod)} given as {key}")
        edits = [(key, self.pods.get(key), pod) for key, pod in changed.items() if self.pods.get(key) is not pod]
        if not edits:
            return self
        before = [self.info(old) if old is not None else None for _, old, _ in edits]  # before ``new`` parses
        new = Snapshot.__new__(Snapshot)
        new.nad_types, new.nad_problems = self.nad_types, self.nad_problems
        new._validated, new.policies, new._policies_by_ns = self._validated, self.policies, self._policies_by_ns
        new.namespace_labels, new._namespace_objects = self.namespace_labels, self._namespace_objects
        namespaces = {key.partition("/")[0] for key, _, _ in edits}
        self.pods = pods_map = _persistent(self.pods)  # same content: a patch then shares the rest
        pods = pods_map.mutate()
        by_ns = dict(self._pods_by_ns)
        for namespace in namespaces:
            self._pods_by_ns[namespace] = namespace_map = _persistent(self._pods_by_ns.get(namespace, _NO_PODS))
            in_namespace = namespace_map.mutate()
            for key, _, pod in edits:
                if key.partition("/")[0] != namespace:
                    continue
                if pod is None:
                    del pods[key], in_namespace[key]
                    self._info.pop(key, None)
                else:
                    pods[key] = in_namespace[key] = pod
            by_ns[namespace] = in_namespace.finish()
            if by_ns[namespace] and namespace not in new.namespace_labels:
                new.namespace_labels = {**new.namespace_labels, namespace: {}}
            elif not by_ns[namespace]:  # no pods left: forgotten unless a Namespace object names it
                del by_ns[namespace]
                if namespace not in self._namespace_objects:
                    new.namespace_labels = {k: v for k, v in new.namespace_labels.items() if k != namespace}
        new.pods, new._pods_by_ns, new._info = pods.finish(), by_ns, self._info
        after = [new.info(pod) if pod is not None else None for _, _, pod in edits]
        new._peer_addresses = {}
        for (policy_namespace, peers, network), found in self._peer_addresses.items():
            if policy_namespace not in namespaces and all(p.namespaces is None for p in peers):
                new._peer_addresses[policy_namespace, peers, network] = found  # peers of another namespace only
                continue
            gone = [i for i in before if i is not None and selects(peers, policy_namespace, self.namespace_labels, i)]
            came = [i for i in after if i is not None and selects(peers, policy_namespace, new.namespace_labels, i)]
            new._peer_addresses[policy_namespace, peers, network] = found.patched(gone, came, network)
        new._named = None
        if self._named is not None:  # built: patched (else built on first use)
            left = [c for i in before if i is not None for c in _named_contributions(i)]
            joined = [c for i in after if i is not None for c in _named_contributions(i)]
            new._named = _patched_named(self._named, left, joined)
        new._named_egress = {}
        touched = _addresses_by_network([i for i in (*before, *after) if i is not None])
        for egress_key, egress in self._named_egress.items():
            addresses = touched.get(egress_key[3])
            new._named_egress[egress_key] = (
                egress if addresses is None else self._patched_egress(new, egress_key, egress, addresses)
            )
        new._selected = {}
        new._peer_infos = {}
        new._label_index = {}
        new.memo = {}
        return new

    def _patched_egress(
        self,
        new: Snapshot,
        key: NamedEgressKey,
        found: tuple[Elements[Element], Elements[Element]],
        addresses: tuple[set[int], set[int]],
    ) -> tuple[Elements[Element], Elements[Element]]:
        """``found`` (of ``self``) for ``new``: only the pairs of the addresses of the changed pods can differ
        (they are the only ones whose owners or whose admission by the rule's peers changed)."""
        out = []
        for family in (0, 1):
            removed: list[Element] = []
            added: list[Element] = []
            for address in addresses[family]:
                was, now = self._egress_pairs(key, family, address), new._egress_pairs(key, family, address)
                if was != now:
                    removed.extend(e for e in was if e not in now)
                    added.extend(e for e in now if e not in was)
            out.append(found[family].spliced(removed, added))
        return out[0], out[1]

    def info(self, pod: Pod) -> PodInfo:
        """The parsed pod (memoised for the snapshot's own pod objects)."""
        key = pod_key(pod)
        found = self._info.get(key)
        if found is not None and found[0] is pod:
            return found[1]
        info = _parse_pod(pod, self.nad_types)
        if self.pods.get(key) is pod:
            self._info[key] = (pod, info)
        return info

    def policies_in(self, namespace: str) -> list[EffectivePolicy]:
        return self._policies_by_ns.get(namespace, [])

    def peer_addresses(
        self, policy_namespace: str, peers: tuple[SelectorPeer, ...], network: str
    ) -> tuple[Elements[Element], Elements[Element]]:
        """The addresses on ``network`` of the pods that any of a rule's selector ``peers`` selects (§2.4.20-22),
        v4 and v6, as sorted hash-set elements ``((a, a),)`` in chunks; memoised, and patched by ``with_pods``."""
        key = (policy_namespace, peers, network)
        found = self._peer_addresses.get(key)
        if found is None:
            if len(peers) == 1:
                selected: Iterable[PodInfo] = self._peer_pods(policy_namespace, peers[0]).values()
            else:  # a pod several peers select counts once
                union: dict[str, PodInfo] = {}
                for peer in peers:
                    union.update(self._peer_pods(policy_namespace, peer))
                selected = union.values()
            found = self._peer_addresses[key] = PeerAddresses.of(selected, network)
        return found.elements

    def _peer_pods(self, policy_namespace: str, peer: SelectorPeer) -> dict[str, PodInfo]:
        """The pods one selector peer selects, by key (``peer_addresses.selects``); memoised for this snapshot
        only (a patched snapshot patches the addresses, not this)."""
        key = (policy_namespace, peer)
        found = self._selected.get(key)
        if found is None:
            labels = self.namespace_labels
            if peer.namespaces is None:
                namespaces = [policy_namespace]
            else:
                namespaces = [ns for ns, lab in labels.items() if peer.namespaces.matches(lab)]
            found = self._selected[key] = {}
            pods = peer.pods
            for ns in namespaces:
                if pods is None:
                    found.update((info.key, info) for info in self._peers_in(ns))
                    continue
                candidates = self._peers_labelled(ns, pods.labels[0]) if pods.labels else self._peers_in(ns)
                for info in candidates:
                    if pods.matches(info.labels):
                        found[info.key] = info
        return found

    def _peers_labelled(self, namespace: str, label: tuple[str, str]) -> list[PodInfo]:
        """The peer pods of ``namespace`` (``_peers_in``) that carry ``label`` (key, value): a selector with
        ``matchLabels`` only needs to check those; the index is built once per namespace and snapshot."""
        index = self._label_index.get(namespace)
        if index is None:
            index = self._label_index[namespace] = {}
            for info in self._peers_in(namespace):
                for item in info.labels.items():
                    index.setdefault(item, []).append(info)
        return index.get(label, [])

    def _peers_in(self, namespace: str) -> list[PodInfo]:
        """The pods of ``namespace`` whose addresses count for selector peers (``is_peer``); memoised for this
        snapshot only, as ``_peer_pods``."""
        found = self._peer_infos.get(namespace)
        if found is None:
            infos = map(self.info, self._pods_by_ns.get(namespace, {}).values())
            found = self._peer_infos[namespace] = [info for info in infos if info.is_peer]
        return found

    def named_ports(
        self, network: str, protocol: str, name: str
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Sorted (address, port) pairs, v4 and v6, of live (not finished, not hostNetwork) pods on ``network`` that
        declare container port ``name`` over ``protocol``: the owners of egress named ports (§2.5.35)."""
        if self._named is None:
            index: dict[_NamedKey, tuple[list[_Pair], list[_Pair]]] = {}
            for pod in self.pods.values():
                for key, family, pair in _named_contributions(self.info(pod)):
                    index.setdefault(key, ([], []))[family].append(pair)
            for v4, v6 in index.values():
                v4.sort()
                v6.sort()
            self._named = index
        return self._named.get((network, protocol, name), ([], []))

    def named_egress(self, key: NamedEgressKey) -> tuple[Elements[Element], Elements[Element]]:
        """The elements ``((a, a), (port, port))`` of an egress rule's named-port set, v4 and v6: the owners on
        the network of the port names (``named_ports``) whose address the rule's peers admit (§2.5.35: egress
        named ports resolve per destination pod); memoised, and patched by ``with_pods``."""
        found = self._named_egress.get(key)
        if found is None:
            found = self._named_egress[key] = (
                Elements.of(self._egress_pairs(key, 0, None)),
                Elements.of(self._egress_pairs(key, 1, None)),
            )
        return found

    def _egress_pairs(self, key: NamedEgressKey, family: int, address: int | None) -> list[Element]:
        """The sorted elements of ``key``'s set in ``family``: all, or those of one ``address``."""
        policy_namespace, selectors, blocks, network, protocol, names = key
        asked: tuple[Interval, ...] = ((0, 1 << 128),) if address is None else ((address, address),)
        if selectors is None:  # no peers field: every owner of the ports
            admitted = asked
        else:
            pods = self.peer_addresses(policy_namespace, selectors, network)[family] if selectors else ()
            if address is not None:  # one address: is it admitted?
                admitted = asked if _within(blocks[family], address) or ((address,) * 2,) in pods else ()
            else:  # everything the peers admit, merged
                admitted = merge([*blocks[family], *(iv for (iv,) in pods)])
        pairs: list[_Pair] = []
        for name in names:
            served = self.named_ports(network, protocol, name)[family]
            for lo, hi in admitted:  # sorted and disjoint: the slices come in order
                pairs += served[bisect.bisect_left(served, (lo, -1)) : bisect.bisect_right(served, (hi, 1 << 16))]
        if len(names) > 1 or not all(map(operator.lt, pairs, pairs[1:])):  # several lists, or one pair twice
            pairs = sorted(set(pairs))
        return [((a, a), (port, port)) for a, port in pairs]


def _persistent(pods: Mapping[str, Pod]) -> Map[str, Pod]:
    """``pods`` as a persistent map (made once, ~0.6 us a pod; every later version shares it)."""
    return pods if isinstance(pods, Map) else Map(pods)


def _named_contributions(info: PodInfo) -> list[_Contribution]:
    """What one pod puts in the index of egress named-port owners (``Snapshot.named_ports``)."""
    if not info.is_subject or not info.container_ports:
        return []
    out: list[_Contribution] = []
    for att in info.attachments:
        for port_name, protocol, number in info.container_ports:
            key = (att.network, protocol, port_name)
            out.extend((key, 0, (a, number)) for a in att.v4)
            out.extend((key, 1, (a, number)) for a in att.v6)
    return out


def _patched_named(
    index: dict[_NamedKey, tuple[list[_Pair], list[_Pair]]], gone: list[_Contribution], came: list[_Contribution]
) -> dict[_NamedKey, tuple[list[_Pair], list[_Pair]]]:
    """``index`` after pods whose contributions were ``gone`` now contribute ``came``; the lists of the keys that
    change are copied (the index of the earlier snapshot stays as it was), the others shared."""
    if sorted(gone) == sorted(came):
        return index
    out = dict(index)
    copied: set[_NamedKey] = set()
    for (key, family, pair), adding in [*((c, False) for c in gone), *((c, True) for c in came)]:
        if key not in copied:
            v4, v6 = out.get(key, ([], []))
            out[key] = (list(v4), list(v6))
            copied.add(key)
        pairs = out[key][family]
        if adding:
            bisect.insort(pairs, pair)
        else:
            del pairs[bisect.bisect_left(pairs, pair)]
    return out


def _within(intervals: tuple[Interval, ...], address: int) -> bool:
    """Whether ``address`` lies in one of the merged ``intervals``."""
    i = bisect.bisect_right(intervals, (address, 1 << 128)) - 1
    return i >= 0 and intervals[i][1] >= address


def _addresses_by_network(infos: list[PodInfo]) -> dict[str, tuple[set[int], set[int]]]:
    out: dict[str, tuple[set[int], set[int]]] = {}
    for info in infos:
        for att in info.attachments:
            v4, v6 = out.setdefault(att.network, (set(), set()))
            v4.update(att.v4)
            v6.update(att.v6)
    return out
