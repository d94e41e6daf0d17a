"""Sets' transaction ids in the kernel: named sets are found by name, and no two sets of a batch share an id.

Ids come from one process-wide counter (`netlink_nft._plans`); these tests force the collisions a wrapped counter
or a rule added twice would cause. Kernels before 6.11 resolve an anonymous set's id to the *oldest* set of the
batch with that id, later ones to the newest, so a shared id would bind a rule to the wrong set on the former: the
batch must never hold one (this file runs on 6.1 too, `tests/oldkernel/subset`).
"""

from __future__ import annotations

import itertools

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    IPV4_ADDR,
    TCP_DPORT,
    Batch,
    Chain,
    Family,
    Hook,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    _plans,
    _tlv,
    dump_table,
    in_set,
    replace_contents,
    rule,
)
from netlink_nft._const import NFT_MSG_NEWSET, NFTA_SET_ID

T = Table(Family.INET, "t")


def _force_ids(monkeypatch: pytest.MonkeyPatch, first: int, repeats: int) -> None:
    """The next `repeats` ids are all `first`, as after the 32-bit counter wrapped onto live ids."""
    monkeypatch.setattr(_plans, "_ids", itertools.chain([first - 1] * repeats, itertools.count(first)))


def test_a_named_set_and_an_anonymous_one_forced_onto_one_id_both_work(
    nft_sock: NftSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    _force_ids(monkeypatch, 4242, 3)  # the named set, then the rule's anonymous set (rebound), then one more
    named = Set(T, "blocked", (IPV4_ADDR,), elements=(SetElement("10.9.0.1"),))
    desired = Ruleset(
        T,
        (Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT),),
        (named,),
        (
            rule(T, "input", in_set(IP_SADDR, "blocked"), DROP),
            rule(T, "input", in_set(IP_SADDR, [SetElement("10.1.0.1"), SetElement("10.1.0.2")]), ACCEPT),
        ),
    )
    batch = replace_contents(desired)
    ids = [_tlv.get_be32(_tlv.parse_attrs(m.body)[NFTA_SET_ID]) for m in batch.messages if m.kind == NFT_MSG_NEWSET]
    assert ids[0] == 4242 and len(set(ids)) == 2, f"the rule's anonymous set needs an id of its own: {ids}"
    nft_sock.apply(batch)
    assert dump_table(nft_sock, T) == desired


def test_the_same_rule_twice_in_a_batch_gets_an_anonymous_set_each(nft_sock: NftSocket) -> None:
    twice = rule(T, "input", in_set(TCP_DPORT, [SetElement(22), SetElement(80)]), ACCEPT)
    other = rule(T, "input", in_set(TCP_DPORT, [SetElement(443), SetElement(8443)]), DROP)
    batch = Batch()
    batch.add_table(T)
    batch.add_chain(Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT))
    batch.add_rules([twice, other, twice])
    nft_sock.apply(batch)
    assert dump_table(nft_sock, T) == Ruleset(
        T, (Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT),), (), (twice, other, twice)
    )
