"""Deltas (DESIGN.md: an unchanged pod costs nothing; peer churn is a set-element delta)."""

from __future__ import annotations

import ipaddress
import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy.builders import World, pod, property_settings
from tests.unit.policy.test_property_oracle import worlds
from tests.unit.policy.test_semantics import FROM_A, cluster, net1, server
from trinet.policy import PodRuleset
from trinet.policy.delta import Delta, ElementDelta, FullSwap, NoChange, SetElementChange, delta
from trinet.policy.diff import _MAX_STEP, sorted_diff


def test_unchanged_ruleset_is_no_change() -> None:
    a, b = cluster(server({"ingress": [FROM_A]})), cluster(server({"ingress": [FROM_A]}))
    assert a.ruleset("ns/s") is not b.ruleset("ns/s")
    assert delta(a.ruleset("ns/s"), b.ruleset("ns/s")) == NoChange()
    assert a.ruleset("ns/s").content_hash() == b.ruleset("ns/s").content_hash()


def test_2_7_43_peer_churn_is_a_set_element_delta() -> None:
    base = [pod("ns/s", {"app": "s"}, net1(1)), pod("ns/a", {"app": "a"}, net1(2))]
    before = cluster(server({"ingress": [FROM_A]}), pods=base).ruleset("ns/s")
    moved = [base[0], pod("ns/a", {"app": "a"}, net1(7)), pod("ns/a2", {"app": "a"}, net1(3))]
    after = cluster(server({"ingress": [FROM_A]}), pods=moved).ruleset("ns/s")
    change = delta(before, after)
    assert change == ElementDelta(
        (
            SetElementChange("ingress-net1-0", removed=(((0x0A010002, 0x0A010002),),),
                             added=(((0x0A010003, 0x0A010003),), ((0x0A010007, 0x0A010007),))),
            SetElementChange("ingress-net1-1", removed=(((0xFD000001 << 96 | 2,) * 2,),),
                             added=(((0xFD000001 << 96 | 3,) * 2,), ((0xFD000001 << 96 | 7,) * 2,))),
        )
    )  # fmt: skip


def test_policy_change_is_a_full_swap() -> None:
    before = cluster(server({"ingress": [FROM_A]})).ruleset("ns/s")
    after = cluster(server({"ingress": [{**FROM_A, "ports": [{"port": 80}]}]})).ruleset("ns/s")
    assert delta(before, after) == FullSwap(after)
    assert delta(None, after) == FullSwap(after)


def test_losing_all_policies_is_a_full_swap_to_nothing() -> None:
    before = cluster(server({})).ruleset("ns/s")
    after = cluster().ruleset("ns/s")
    result = delta(before, after)
    assert isinstance(result, FullSwap) and not result.ruleset.enforces


def _apply(old: PodRuleset, change: Delta) -> PodRuleset:
    if isinstance(change, NoChange):
        return old
    if isinstance(change, FullSwap):
        return change.ruleset
    by_name = {c.set_name: c for c in change.changes}
    sets = []
    for old_set in old.table.sets:
        c = by_name.get(old_set.name)
        if c is None:
            sets.append(old_set)
            continue
        kept = [e for e in old_set.elements if e not in c.removed]
        sets.append(msgspec.structs.replace(old_set, elements=tuple(sorted([*kept, *c.added]))))
    return PodRuleset(msgspec.structs.replace(old.table, sets=tuple(sets)))


@property_settings
@given(worlds(), st.integers(0, 4), st.integers(1, 200))
def test_applying_the_delta_gives_the_new_ruleset(world: World, which: int, shift: int) -> None:
    """Peer churn (one pod's addresses change) is usually an element delta; applying any delta is exact."""
    refs = sorted(world.pods)
    victim = world.pods[refs[which % len(refs)]]
    status = json.loads(victim.metadata.annotations["k8s.v1.cni.cncf.io/network-status"])
    for entry in status[1:]:
        entry["ips"] = [str(ipaddress.ip_address(ip) + shift) for ip in entry["ips"]]
    annotations = {**victim.metadata.annotations, "k8s.v1.cni.cncf.io/network-status": json.dumps(status)}
    moved = msgspec.structs.replace(victim, metadata=msgspec.structs.replace(victim.metadata, annotations=annotations))
    after = World([moved if p is victim else p for p in world.pods.values()], world.policies, world.namespaces,
                  world.nads)  # fmt: skip
    for ref in refs:
        old, new = world.ruleset(ref), after.ruleset(ref)
        change = delta(old, new)
        assert _apply(old, change) == new
        if ref != refs[which % len(refs)] and old.enforces and new.enforces:
            assert not isinstance(change, FullSwap)  # only peers moved: never a structural change


@property_settings
@given(
    old=st.sets(st.integers(0, 60)),
    new=st.sets(st.integers(0, 60)),
)
def test_sorted_diff_is_the_set_difference_in_order(old: set[int], new: set[int]) -> None:
    a = tuple(((x, x),) for x in sorted(old))
    b = tuple(((x, x),) for x in sorted(new))
    removed, added = sorted_diff(a, b)
    assert removed == tuple(((x, x),) for x in sorted(old - new))
    assert added == tuple(((x, x),) for x in sorted(new - old))


@property_settings
@given(
    size=st.integers(0, 3 * _MAX_STEP),
    gone=st.sets(st.integers(0, 3 * _MAX_STEP), max_size=6),
    came=st.sets(st.integers(-1, 3 * _MAX_STEP), max_size=6),
    shared=st.booleans(),
)
def test_sorted_diff_of_runs_longer_than_the_gallop_stride(
    size: int, gone: set[int], came: set[int], shared: bool
) -> None:
    """A few changes anywhere in sets longer than ``_MAX_STEP``, so that common runs span capped strides and the
    halving starts from a capped bracket; the new set's unchanged elements are the old objects or equal copies."""
    old = tuple(((2 * x, 2 * x),) for x in range(size))
    kept = {2 * x for x in range(size) if x not in gone}
    values = sorted(kept | {2 * x + 1 for x in came})
    by_value = {e[0][0]: e for e in old}
    new = tuple(by_value[v] if shared and v in by_value else ((v, v),) for v in values)
    removed, added = sorted_diff(old, new)
    assert removed == tuple(((2 * x, 2 * x),) for x in sorted(gone) if x < size)
    assert added == tuple(((2 * x + 1, 2 * x + 1),) for x in sorted(came))


def test_sorted_diff_of_a_large_set_with_a_few_changes() -> None:
    a = tuple(((x, x),) for x in range(0, 200_000, 2))
    b = (((-1, -1),), *a[1:5000], ((9_999, 9_999),), *a[5000:-1], ((500_000, 500_000),))
    assert sorted_diff(a, b) == ((a[0], a[-1]), (((-1, -1),), ((9_999, 9_999),), ((500_000, 500_000),)))
