"""The pure parts of the doorway to netlink_nft: adopt's choices, drop counters, chain names read back."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

import netlink_nft as nl
from tests.unit.policy.builders import property_settings
from tests.unit.policy.test_semantics import FROM_A, cluster, server
from trinet.policy.compile import Direction, _chain_name, chain_interface
from trinet.policy.to_netlink import Installed, adopt, drop_counters, to_netlink, transaction, versioned

ONE = cluster(server({"ingress": [FROM_A]})).ruleset("ns/s")
TWO = cluster(server({"ingress": [FROM_A], "egress": [{}]})).ruleset("ns/s")


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
