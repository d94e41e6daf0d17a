"""Deltas (DESIGN.md: an unchanged pod costs nothing; peer churn is a set-element delta)."""

from __future__ import annotations

from tests.unit.policy.builders import pod
from tests.unit.policy.test_semantics import FROM_A, cluster, net1, server
from trinet.policy.delta import ElementDelta, FullSwap, NoChange, SetElementChange, delta


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
    assert before.structure_hash() == after.structure_hash()
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
