"""The pure parts of the doorway to netlink_nft: adopt's choices, drop counters, chain names read back."""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import sys

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import netlink_nft as nl
from tests.unit.policy.builders import World, pod, property_settings
from tests.unit.policy.test_property_oracle import worlds
from tests.unit.policy.test_semantics import FROM_A, cluster, net1, server
from trinet.policy import ruleset as pm
from trinet.policy.compile import Direction, _chain_name, chain_interface
from trinet.policy.to_netlink import (
    Installed,
    adopt,
    drop_counters,
    mapping,
    to_netlink,
    transaction,
    values,
    versioned,
)

ONE = cluster(server({"ingress": [FROM_A]})).ruleset("ns/s")
TWO = cluster(server({"ingress": [FROM_A], "egress": [{}]})).ruleset("ns/s")
PODS_MOVED = [
    pod("ns/s", {"app": "s"}, net1(1)),
    pod("ns/a", {"app": "a"}, net1(9)),
    pod("ns/a2", {"app": "a"}, net1(7)),
]


def _kinds(batch: nl.Batch) -> list[str]:
    return [m.describe().split()[0] for m in batch.messages]


def test_adopt_sends_nothing_for_either_generation_whatever_the_counters_say() -> None:
    for generation in (1, 2):
        dumped = to_netlink(versioned(ONE, generation))
        counted = dataclasses.replace(
            dumped,
            rules=tuple(
                dataclasses.replace(r, exprs=tuple(nl.Counter(99, 9999) if isinstance(e, nl.Counter) else e
                                                   for e in r.exprs))
                for r in dumped.rules
            ),
        )  # fmt: skip
        assert adopt(counted, ONE) == (None, Installed(ONE, generation))


def test_adopt_moves_sets_to_the_generation_the_dump_does_not_use() -> None:
    for generation in (1, 2):
        batch, installed = adopt(to_netlink(versioned(TWO, generation)), ONE)
        assert batch is not None and installed == Installed(ONE, 3 - generation)
        deleted = [m.describe() for m in batch.messages if m.describe().startswith(("DELTABLE", "DELCHAIN"))]
        assert deleted == [m for m in deleted if "egress-net1" in m], deleted  # only the chain ONE lacks


def test_adopt_without_a_table_creates_it_and_removes_what_does_not_enforce() -> None:
    batch, installed = adopt(None, ONE)
    assert batch is not None and installed == Installed(ONE, 1) and _kinds(batch)[0] == "NEWTABLE"
    gone = cluster().ruleset("ns/s")
    assert adopt(None, gone) == (None, None)
    batch, installed = adopt(to_netlink(versioned(ONE, 1)), gone)
    assert batch is not None and installed is None and _kinds(batch) == ["NEWTABLE", "DELTABLE"]


def test_no_transaction_destroys() -> None:
    gone = cluster().ruleset("ns/s")
    for applied in (None, Installed(ONE, 1), Installed(TWO, 2)):
        for desired in (ONE, TWO, gone):
            batch, _ = transaction(applied, desired)
            assert batch is None or not any(k.startswith("DESTROY") for k in _kinds(batch))


def test_drop_counters_read_each_isolating_chain() -> None:
    dumped = to_netlink(versioned(TWO, 1))
    counts = {"ingress-net1": 5, "egress-net1": 7}
    rules = tuple(
        dataclasses.replace(r, exprs=tuple(nl.Counter(counts[r.chain]) if isinstance(e, nl.Counter) else e
                                           for e in r.exprs))
        for r in dumped.rules
    )  # fmt: skip
    assert drop_counters(dataclasses.replace(dumped, rules=rules)) == {("net1", "ingress"): 5, ("net1", "egress"): 7}


def test_drop_counters_ignore_foreign_chains_and_rules() -> None:
    table = nl.Table(nl.Family.INET, "t")
    rules = (
        nl.rule(table, "input", nl.Counter(3), nl.DROP),  # a base chain
        nl.rule(table, "ingress-net1", nl.Counter(4), nl.ACCEPT),  # counts, but not a drop
        nl.rule(table, "egress/xzz", nl.Counter(4), nl.DROP),  # not hex
        nl.rule(table, "egress-net2", nl.DROP),  # no counter
    )
    assert drop_counters(nl.Ruleset(table, rules=rules)) == {}


@property_settings
@given(
    name=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=15),
    direction=st.sampled_from(list(Direction)),
)
def test_chain_names_read_back_as_their_interface(name: str, direction: Direction) -> None:
    assert chain_interface(_chain_name(direction, name)) == (name, direction)


def test_other_names_are_not_interface_chains() -> None:
    for name in ("input", "output", "ingress", "ingress-", "ingress-a b", "egress/x6", "egress/xff"):
        assert chain_interface(name) is None, name


def _memo_entries() -> int:
    gc.collect()
    mapping.sweep()
    return mapping.memo_entries()


def _count_sweeps(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """A list that grows by one at every sweep ``to_netlink`` runs."""
    sweeps: list[None] = []
    sweep = mapping.sweep

    def counted() -> None:
        sweeps.append(None)
        sweep()

    monkeypatch.setattr(mapping, "sweep", counted)
    return sweeps


def test_memos_hold_only_what_live_rulesets_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mapping a thousand different rulesets one after the other, keeping only the last (as the daemon keeps what
    it installed), leaves the memos as large as after the first: bounded by what is alive, not by history, and
    never more than twice that (plus the floor) in between, by the sweeps ``to_netlink`` runs itself."""
    monkeypatch.setattr(mapping, "_SWEEP_FLOOR", 100)  # so that the thousand rulesets sweep several times
    monkeypatch.setattr(mapping._GROWTH, "limit", 100)
    sweeps = _count_sweeps(monkeypatch)
    spec = {"ingress": [FROM_A], "egress": [{"ports": [{"port": 1}]}]}
    world = cluster(server(spec))
    gc.collect()
    before = _memo_entries()
    kept = world.ruleset("ns/s")
    to_netlink(kept, 1)
    one = _memo_entries() - before
    assert one > 0
    most = 0
    sweeps.clear()
    for port in range(2, 1002):
        kept = cluster(server({"ingress": [FROM_A], "egress": [{"ports": [{"port": port}]}]})).ruleset("ns/s")
        to_netlink(kept, 1 + port % 2)
        most = max(most, mapping.memo_entries())
    assert len(sweeps) >= 10
    assert most <= 2 * max(100, before + one) + one
    assert _memo_entries() - before <= 2 * one
    del kept, world
    assert _memo_entries() == before


def _swapped(step: int) -> pm.PodRuleset:
    """A pod with a 1,000-address set whose rule's port changes at every step: each step is a full swap."""
    elements = tuple(((a, a),) for a in range(step, step + 1_000))
    addr, port = pm.Addr(4, "saddr", set_name="ingress-net1-0"), pm.Port("dport", ((step, step),))
    chain = pm.Chain("ingress-net1", (pm.Rule((addr, pm.L4Proto((6,)), port), pm.Accept()),))
    return pm.PodRuleset(pm.Table("t", (pm.Set("ingress-net1-0", ("ipv4_addr",), False, elements),), chains=(chain,)))


def test_full_swaps_keep_the_memos_within_twice_the_installed_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's pattern: ``transaction`` maps the installed and the desired ruleset together and the installed
    one dies after it. The memos never hold more than twice the installed weight (plus the floor)."""
    monkeypatch.setattr(mapping, "_SWEEP_FLOOR", 100)
    gc.collect()
    mapping.sweep()
    before = mapping.memo_weight()
    batch, installed = transaction(None, _swapped(1))
    assert batch is not None and installed is not None
    mapping.sweep()
    weight = mapping.memo_weight() - before
    assert weight > 1_000
    heaviest = 0
    for step in range(2, 60):
        batch, installed = transaction(installed, _swapped(step))
        assert batch is not None and installed is not None
        heaviest = max(heaviest, mapping.memo_weight() - before)
    assert heaviest <= 2 * weight + 100


def test_adopting_a_table_maps_only_the_generation_its_sets_are_named_for() -> None:
    gc.collect()
    mapping.sweep()
    desired = _swapped(7)
    batch, installed = adopt(to_netlink(desired, 2), desired)  # as dumped from a table installed at generation 2
    assert batch is None and installed == Installed(desired, 2)
    (named,) = desired.table.sets
    assert not [place for place, entries in mapping._SETS._places.items() if place[-1] == ".g1" and named in entries]


def test_large_sets_weigh_their_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    """A set is weighed with its elements, so that dead large sets (a full swap of a pod with many peers leaves
    its old sets to the next sweep) are swept in proportion to their size: the memos never hold more than twice
    the live weight plus the floor, counted in elements, not only in entries."""
    monkeypatch.setattr(mapping, "_SWEEP_FLOOR", 1_000)
    monkeypatch.setattr(mapping._GROWTH, "limit", 1_000)
    heaviest = 0
    for generation in range(50):
        elements = tuple(((a, a),) for a in range(generation * 1_000, (generation + 1) * 1_000))
        kept = pm.PodRuleset(pm.Table("t", sets=(pm.Set("s", ("ipv4_addr",), False, elements),)))
        to_netlink(kept)
        heaviest = max(heaviest, mapping.memo_weight())
    assert heaviest <= 2 * (1_000 + 1_001) + 1_001  # floor and one live set (1,001), plus the one just mapped
    del kept
    mapping.sweep()
    assert mapping.memo_weight() < 1_001


def test_a_sweep_keeps_what_live_rulesets_hold() -> None:
    """A sweep drops only values nothing else holds: a live ruleset (the object first mapped: an equal one made
    apart is found only while that one lives) maps to the very same netlink objects after it (a sweep that dropped
    live values would cost a start-up's mapping again at every sweep)."""
    first = to_netlink(ONE, 1)
    mapping.sweep()
    again = to_netlink(ONE, 1)
    assert first.chains and first.sets and first.rules
    for old, new in ((first.chains, again.chains), (first.sets, again.sets), (first.rules, again.rules)):
        assert all(a is b for a, b in zip(old, new, strict=True))


def test_memos_drop_the_places_of_values_no_longer_alive() -> None:
    """A chain name (one per interface and direction) is a place of the rule memo: when the last rule mapped in a
    chain dies, the place goes too, so interfaces that came and went leave nothing behind."""
    gc.collect()
    before = len(mapping._RULES._places)
    rule = pm.Rule((pm.L4Proto((6,)),), pm.Accept())
    kept = [pm.PodRuleset(pm.Table("t", chains=(pm.Chain(f"ingress-if{i}", (rule,)),))) for i in range(50)]
    mapped = [to_netlink(ruleset) for ruleset in kept]
    assert len(mapping._RULES._places) == before + 50
    del kept, rule, mapped
    mapping.sweep()
    assert len(mapping._RULES._places) == before


@property_settings
@given(worlds())
def test_elements_equal_the_field_by_field_conversion(world: World) -> None:
    """``elements`` has loops of its own for the usual key shapes: each gives what converting every field with
    its type's ``from_int`` gives."""
    types = {"ipv4_addr": nl.IPV4_ADDR, "ipv6_addr": nl.IPV6_ADDR, "inet_service": nl.INET_SERVICE}
    for ref in world.pods:
        for s in world.ruleset(ref).table.sets:
            makes = [types[k].from_int for k in s.key]
            if len(makes) == 1:
                expected = [
                    nl.SetElement(makes[0](lo), None if lo == hi else makes[0](hi)) for ((lo, hi),) in s.elements
                ]
            else:
                expected = [
                    nl.SetElement(tuple(m(lo) for m, (lo, _) in zip(makes, e, strict=True))) for e in s.elements
                ]
            assert list(mapping.elements(s, s.elements)) == expected


def test_elements_of_every_key_shape() -> None:
    """Each shape keeps the order and the values, ranges and single values alike."""
    v4, v6 = int(ipaddress.IPv4Address("10.0.0.1")), int(ipaddress.IPv6Address("fd00::1"))
    a4, a6 = ipaddress.IPv4Address, ipaddress.IPv6Address
    ports = pm.Set("p", ("inet_service",), True, (((80, 80),), ((8000, 8100),)))
    assert mapping.elements(ports, ports.elements) == (nl.SetElement(80), nl.SetElement(8000, 8100))
    pairs = pm.Set("a", ("ipv6_addr", "inet_service"), False, (((v6, v6), (53, 53)), ((v6 + 1, v6 + 1), (5, 5))))
    assert mapping.elements(pairs, pairs.elements) == (
        nl.SetElement((a6(v6), 53)),
        nl.SetElement((a6(v6 + 1), 5)),
    )
    triple = pm.Set(
        "t",
        ("ipv4_addr", "inet_service", "ipv4_addr"),
        False,
        (((v4, v4), (1, 1), (v4 + 1, v4 + 1)), ((v4 + 2, v4 + 2), (2, 2), (v4, v4))),
    )
    assert mapping.elements(triple, triple.elements) == (
        nl.SetElement((a4(v4), 1, a4(v4 + 1))),
        nl.SetElement((a4(v4 + 2), 2, a4(v4))),
    )
    ranges = pm.Set("r", ("ipv4_addr",), True, (((v4, v4 + 9),), ((v4 + 20, v4 + 20),)))
    assert mapping.elements(ranges, ranges.elements) == (
        nl.SetElement(a4(v4), a4(v4 + 9)),
        nl.SetElement(a4(v4 + 20)),
    )


def test_sets_holding_one_address_share_its_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """An address in several sets is one value, and one element where the element is the same; what is kept for
    that is bounded, and a port no key can hold is passed on as given (not folded into another pair)."""
    v4 = int(ipaddress.IPv4Address("10.0.0.1"))
    one = pm.Set("a", ("ipv4_addr",), False, (((v4, v4),),))
    pair = pm.Set("b", ("ipv4_addr", "inet_service"), False, (((v4, v4), (80, 80)),))
    ranges = pm.Set("r", ("ipv4_addr",), True, (((v4, v4 + 9),),))
    (a,), (b,), (r,) = (mapping.elements(x, x.elements) for x in (one, pair, ranges))
    assert a.key == ipaddress.IPv4Address(v4) and a.key is b.key[0] is r.key
    assert mapping.elements(one, one.elements)[0] is a and mapping.elements(pair, pair.elements)[0] is b
    other_port = pm.Set("c", ("ipv4_addr", "inet_service"), False, (((v4, v4), (81, 81)),))
    assert mapping.elements(other_port, other_port.elements)[0].key == (a.key, 81)
    wide = pm.Set("d", ("ipv4_addr", "inet_service"), False, (((v4 - 1, v4 - 1), (1 << 16, 1 << 16)),))
    assert mapping.elements(wide, wide.elements)[0].key == (ipaddress.IPv4Address(v4 - 1), 1 << 16)
    monkeypatch.setattr(values, "LIMIT", 10)
    many = pm.Set("m", ("ipv4_addr",), False, tuple(((v4 + i, v4 + i),) for i in range(20)))
    mapping.elements(many, many.elements)
    v6 = pm.Set("e", ("ipv6_addr", "inet_service"), False, (((1, 1), (80, 80)),))
    mapping.elements(v6, v6.elements)  # a set of another kind: the tables over the limit are emptied all the same
    assert not values.ADDRESSES["ipv4_addr"] and not values.SINGLES["ipv4_addr"]
    mapping.elements(one, one.elements)
    assert len(values.ADDRESSES["ipv4_addr"]) == 1 and len(values.SINGLES["ipv4_addr"]) == 1
    mapping.sweep()
    assert not any(len(recent) for kind in (values.ADDRESSES, values.SINGLES, values.PAIRS) for recent in kind.values())


def test_a_peer_change_maps_only_the_change() -> None:
    """The element path builds set definitions without elements and converts only the changed elements."""
    before = _memo_entries()
    old, new = ONE, cluster(server({"ingress": [FROM_A]}), pods=[*PODS_MOVED]).ruleset("ns/s")
    batch, installed = transaction(Installed(old, 2), new)
    assert batch is not None and installed == Installed(new, 2)
    assert {m.describe().split()[0] for m in batch.messages} <= {"NEWSETELEM", "DELSETELEM"}
    assert all(".g2" in m.describe() for m in batch.messages)
    assert _memo_entries() == before  # nothing mapped whole


def test_mapping_with_a_generation_equals_mapping_the_versioned_copy() -> None:
    for generation in (None, 1, 2):
        copy = ONE if generation is None else versioned(ONE, generation)
        assert to_netlink(ONE, generation) == to_netlink(copy)


def test_ipv6_prefixes_short_enough_to_look_like_ipv4_stay_ipv6() -> None:
    """``::/16`` as an integer network is 0/16, which ``ipaddress.ip_network`` would take for IPv4."""
    table = nl.Table(nl.Family.INET, "t")
    for cidr, text in (("::/16", "::/16"), ("::/1", "::/1"), ("::/96", "::/96"), ("::/0", "::/0")):
        network = ipaddress.IPv6Network(cidr)
        lo, hi = int(network.network_address), int(network.broadcast_address)
        rule = pm.Rule((pm.Addr(6, "saddr", elements=((lo, hi),)),), pm.Accept())
        assert mapping._rule(table, "c", rule, "") == nl.rule(table, "c", nl.eq(nl.IP6_SADDR, text), nl.ACCEPT)


def test_ct_state_mask_is_in_host_byte_order() -> None:
    states = ("established", "related")
    native = mapping.ct_state(states)
    assert native.exprs[1] == nl.Bitwise((6).to_bytes(4, sys.byteorder), bytes(4))
    assert mapping.ct_state(states, "big").exprs[1] == nl.Bitwise(b"\0\0\0\x06", bytes(4))  # s390x
    assert mapping.ct_state(states, "little").exprs[1] == nl.Bitwise(b"\x06\0\0\0", bytes(4))


@property_settings
@given(worlds())
def test_mapped_sets_are_in_netlink_nfts_canonical_form(world: World) -> None:
    """``to_netlink`` takes compiled sets as canonical (no second normalisation): normalising them changes
    nothing, and a set that is not canonical (elements reversed) is normalised to the same set."""
    for ref in world.pods:
        ruleset = world.ruleset(ref)
        if not ruleset.enforces:
            continue
        mapped = to_netlink(ruleset, 1)
        for mapped_set in mapped.sets:
            assert mapped_set == mapped_set.with_elements(mapped_set.elements), mapped_set  # normalised again
        for compiled in ruleset.table.sets:
            if len(compiled.elements) > 1:
                shuffled = msgspec.structs.replace(compiled, elements=compiled.elements[::-1])
                (before,) = [m for m in mapped.sets if m.name == compiled.name + ".g1"]
                assert mapping._set(before.table, shuffled, ".g1") == before
