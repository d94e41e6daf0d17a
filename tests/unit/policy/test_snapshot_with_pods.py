"""``Snapshot.with_pods``: a snapshot patched pod change by pod change compiles exactly as one built from scratch.

The daemon keeps one snapshot and patches it on every pod event (``SnapshotCache``), so that a peer change costs
O(change): these tests are what makes that safe.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.unit.policy.builders import World, nad, pod, policy, property_settings
from tests.unit.policy.test_property_oracle import CONTAINER_PORTS, NETWORKS, labels_st, peer_st, selector_st, worlds
from trinet.objects import MultiNetworkPolicy, Pod
from trinet.policy import Snapshot, compile
from trinet.policy.model import SelectorPeer
from trinet.policy.peer_addresses import PeerAddresses
from trinet.policy.selectors import Selector

EVERY_POD = SelectorPeer(pods=Selector(), namespaces=None)

# One pod's new version (None: deleted), in a slot "<ns>/q<n>" or one of the world's "<ns>/p<n>". Addresses come
# from a small pool, so that pods share addresses; namespace "y" has no Namespace object.
_version_st = st.builds(
    lambda labels, nets, phase, host, ports: (labels, nets, phase, host, ports),
    labels_st,
    st.lists(
        st.tuples(st.sampled_from(NETWORKS[:1] * 3 + NETWORKS), st.integers(1, 4)),
        min_size=1,
        max_size=3,
        unique_by=lambda n: n[0],
    ),
    st.sampled_from(["Running", "Running", "Running", "Pending", "Succeeded"]),
    st.sampled_from([False, False, False, True]),
    st.lists(st.sampled_from(CONTAINER_PORTS), unique=True, max_size=2),
)
pod_version_st = st.one_of(st.none(), _version_st, _version_st, _version_st)
# Policies that select pods and admit selector peers on net1, so that most steps have peer sets to patch.
anchor_st = st.builds(
    lambda ns, sel, ingress, egress, named: policy(
        f"{ns}/anchor",
        {
            "podSelector": sel,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": ingress}],
            "egress": [{"to": egress, **({"ports": [{"port": "http"}, {"port": 53}]} if named else {})}],
        },
        "net1",
    ),
    st.sampled_from(["ns", "ns", "x"]),
    st.just({}) | st.just({}) | selector_st,
    st.lists(peer_st, max_size=2).map(lambda peers: [{"podSelector": {}}, *peers]),
    st.lists(peer_st, max_size=2).map(lambda peers: [{"namespaceSelector": {}, "podSelector": {}}, *peers]),
    st.booleans(),
)
slot_st = st.tuples(st.sampled_from(["ns", "ns", "ns", "x", "y"]), st.sampled_from(["p", "q"]), st.integers(0, 5))
batch_st = st.lists(st.tuples(slot_st, pod_version_st), min_size=1, max_size=3)


def _version(ref: str, drawn: tuple[Any, ...]) -> Pod:
    labels, nets, phase, host, ports = drawn
    attachments = []
    for net, address in nets:
        k = NETWORKS.index(net) + 1
        attachments.append((net, f"net{k}", [f"10.{k}.0.{address}", f"fd00:{k}::{address}"]))
    return pod(ref, labels, attachments, phase=phase, host_network=host, ports=ports)


def _assert_same_rulesets(world: World, patched: Snapshot, pods: dict[str, Pod], subjects: list[str]) -> None:
    scratch = Snapshot(pods.values(), world.namespaces, world.policies, world.nads)
    peers = 0
    for ref in subjects:
        if ref in pods:
            expected = compile(scratch, pods[ref], world.options)
            assert compile(patched, pods[ref], world.options) == expected, ref
            peers += sum(len(s.elements) for s in expected.table.sets if not s.interval)
    event("peer elements compiled" if peers else "no peer elements")


@settings(property_settings, max_examples=max(property_settings.max_examples, 1000))  # cheap: ~3 ms an example
@given(worlds(), anchor_st, st.lists(batch_st, min_size=1, max_size=5), st.data())
def test_a_patched_snapshot_compiles_like_one_built_from_scratch(
    drawn: World, anchor: MultiNetworkPolicy, batches: list[list[tuple[tuple[str, str, int], Any]]], data: st.DataObject
) -> None:
    world = World(drawn.pods.values(), [*drawn.policies, anchor], drawn.namespaces, drawn.nads)
    pods = dict(world.pods)
    snapshot = Snapshot(pods.values(), world.namespaces, world.policies, world.nads)
    for batch in batches:
        # Compile all or some pods first, so that most memoised peer addresses are patched, others built later.
        warm = sorted(pods)
        if warm and not data.draw(st.integers(0, 2)):
            warm = data.draw(st.lists(st.sampled_from(warm), max_size=3))
        for ref in warm:
            compile(snapshot, pods[ref], world.options)
        changed: dict[str, Pod | None] = {}
        for (ns, prefix, n), version in batch:
            ref = f"{ns}/{prefix}{n}"
            changed[ref] = None if version is None else _version(ref, version)
            if version is None:
                pods.pop(ref, None)
            else:
                pods[ref] = changed[ref]  # type: ignore[assignment]
        previous, snapshot = snapshot, snapshot.with_pods(changed)
        patched = [k for k, v in previous._peer_addresses.items() if snapshot._peer_addresses[k] is not v]
        event("peer addresses patched" if patched else "no peer addresses patched")
        _assert_same_rulesets(world, snapshot, pods, sorted(pods))


S = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
P = policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"from": [{"podSelector": {}}]}]})


def _peer(ref: str, address: str, **kw: Any) -> Pod:
    return pod(ref, {"app": "a"}, [("ns/net1", "net1", [address])], **kw)


def _v4(snapshot: Snapshot) -> Any:
    return snapshot.peer_addresses("ns", (EVERY_POD,), "ns/net1")[0]


def test_an_address_two_pods_hold_stays_until_the_last_one_goes() -> None:
    a, b = _peer("ns/a", "10.1.0.7"), _peer("ns/b", "10.1.0.7")
    first = Snapshot([S, a, b], [], [P], [nad("ns/net1")])
    assert _v4(first) == (((0x0A010001,) * 2,), ((0x0A010007,) * 2,))
    one_left = first.with_pods({"ns/a": None})
    assert _v4(one_left) == _v4(first)
    none_left = one_left.with_pods({"ns/b": _peer("ns/b", "10.1.0.7", phase="Succeeded")})
    assert _v4(none_left) == (((0x0A010001,) * 2,),)
    assert _v4(first) == (((0x0A010001,) * 2,), ((0x0A010007,) * 2,)), "the earlier snapshot is unchanged"


def test_unchanged_elements_stay_the_same_objects() -> None:
    """What lets the transaction's diff of the installed and the new set compare them by identity."""
    peers = [_peer(f"ns/a{i}", f"10.1.1.{i}") for i in range(1, 200, 2)]
    first = Snapshot([S, *peers], [], [P], [nad("ns/net1")])
    before = _v4(first)
    later = first.with_pods({"ns/new": _peer("ns/new", "10.1.1.100"), "ns/a1": None})
    after = _v4(later)
    assert len(after) == len(before)
    kept = [e for e in after if e != ((0x0A010164,) * 2,)]
    assert all(any(e is old for old in before) for e in kept)
    assert compile(later, S) == compile(Snapshot(later.pods.values(), [], [P], [nad("ns/net1")]), S)


def test_patching_an_address_that_was_never_counted_is_refused() -> None:
    """A leaving pod must have been counted: an inconsistent patch is a bug, never a silent wrong set."""
    info = Snapshot([_peer("ns/a", "10.1.0.9")]).info(_peer("ns/a", "10.1.0.9"))
    with pytest.raises(ValueError, match="not counted"):
        PeerAddresses.of((), "ns/net1").patched([info], [], "ns/net1")


def test_a_destination_pod_that_gains_a_named_port_is_seen_by_egress_named_port_rules() -> None:
    """§2.5.35: egress named ports resolve per destination pod, from an index of every pod's container ports."""
    egress = policy("ns/e", {"podSelector": {"matchLabels": {"app": "s"}}, "egress": [{"ports": [{"port": "http"}]}]})
    d = pod("ns/d", {"app": "d"}, [("ns/net1", "net1", ["10.1.0.4"])])
    first = Snapshot([S, d], [], [egress], [nad("ns/net1")])
    assert compile(first, S) == compile(Snapshot([S], [], [egress], [nad("ns/net1")]), S)
    serving = pod("ns/d", {"app": "d"}, [("ns/net1", "net1", ["10.1.0.4"])], ports=[("http", "TCP", 8080)])
    later = first.with_pods({"ns/d": serving})
    expected = compile(Snapshot([S, serving], [], [egress], [nad("ns/net1")]), S)
    assert compile(later, S) == expected != compile(first, S)


def test_an_egress_named_port_set_holds_each_pair_once_and_sorted() -> None:
    """Two pods reporting one address with the same named port give one ``address . port`` element (a hash set
    refuses a duplicate), and several port names merge into one sorted set."""
    names = [{"port": "http"}, {"port": "web"}]
    egress = policy("ns/e", {"podSelector": {"matchLabels": {"app": "s"}}, "egress": [{"ports": names}]})
    twins = [
        pod(f"ns/d{i}", {"app": "d"}, [("ns/net1", "net1", ["10.1.0.4"])], ports=[("http", "TCP", 8080)])
        for i in (1, 2)
    ]
    web = pod(
        "ns/w", {"app": "w"}, [("ns/net1", "net1", ["10.1.0.3"])], ports=[("web", "TCP", 80), ("http", "TCP", 81)]
    )
    ruleset = compile(Snapshot([S, *twins, web], [], [egress], [nad("ns/net1")]), S)
    (pairs,) = [s for s in ruleset.table.sets if s.key == ("ipv4_addr", "inet_service")]
    a3, a4 = 0x0A010003, 0x0A010004
    assert tuple(pairs.elements) == (((a3, a3), (80, 80)), ((a3, a3), (81, 81)), ((a4, a4), (8080, 8080)))


def test_peers_first_selected_after_a_patch_see_it() -> None:
    """The snapshot's lists of peer pods (per namespace, and per namespace and label) are its own: a rule whose
    peers are first selected on a patched snapshot sees the pods the patch changed."""
    by_label = policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"from": [_APP_A]}]})
    other = policy("ns/o", {"podSelector": {"matchLabels": {"app": "t"}}, "ingress": [{"from": [_APP_B]}]})
    t = pod("ns/t", {"app": "t"}, [("ns/net1", "net1", ["10.1.0.2"])])
    policies, nads = [by_label, other], [nad("ns/net1")]
    first = Snapshot([S, t], [], policies, nads)
    compile(first, t)  # lists the namespace's peer pods (and by label), but selects no peers of S's policy
    later = first.with_pods({"ns/a": _peer("ns/a", "10.1.0.7")})
    expected = compile(Snapshot([S, t, _peer("ns/a", "10.1.0.7")], [], policies, nads), S)
    assert compile(later, S) == expected
    assert any(((0x0A010007,) * 2,) in s.elements for s in expected.table.sets)


_APP_A = {"podSelector": {"matchLabels": {"app": "a"}}}
_APP_B = {"podSelector": {"matchLabels": {"app": "b"}}}


def test_a_pod_under_another_key_is_refused_and_nothing_changes() -> None:
    first = Snapshot([S], [], [P], [nad("ns/net1")])
    with pytest.raises(ValueError, match="given as ns/b"):
        first.with_pods({"ns/b": _peer("ns/a", "10.1.0.9")})
    assert first.with_pods({"ns/s": S}) is first  # nothing changed: the same snapshot


def test_a_namespace_known_only_from_its_pods_is_forgotten_with_its_last_pod() -> None:
    first = Snapshot([S], [], [P], [nad("ns/net1")])
    lone = pod("far/x", {}, [("ns/net1", "net1", ["10.1.0.8"])])
    came = first.with_pods({"far/x": lone})
    assert came.namespace_labels == Snapshot([S, lone], [], [P], [nad("ns/net1")]).namespace_labels
    gone = came.with_pods({"far/x": None})
    assert gone.namespace_labels == first.namespace_labels == {"ns": {}}
