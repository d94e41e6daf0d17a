"""Wire segments (messages framed once per object, set ids given once per object) give the bytes of encoding
afresh, and every set of a batch a transaction id of its own."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest

from netlink_nft import (
    ACCEPT,
    IFNAME,
    IIFNAME,
    IP_SADDR,
    IPV4_ADDR,
    VERDICT,
    Batch,
    Family,
    Lookup,
    Rule,
    Set,
    SetElement,
    Table,
    _tlv,
    in_set,
    jump,
    rule,
    vmap,
)
from netlink_nft._const import NFT_MSG_NEWRULE, NFT_MSG_NEWSET, NFTA_SET_ID
from netlink_nft._elements import AnonymousSet
from netlink_nft._objects import encode_rule
from netlink_nft._sets import ANONYMOUS_NAME, SetSpec, declared_size, encode_element_lists, encode_set

T = Table(Family.INET, "t")
ADDRS = Set(T, "addrs", (IPV4_ADDR,), interval=True, elements=(SetElement.interval(0x0A000000, 0x0A0000FF),))
VMAP = Set(T, "ifaces", (IFNAME,), data=VERDICT, elements=(SetElement("eth0", data=jump("c")),))


def _afresh(r: Rule) -> bytes:
    """The NEWRULE body from scratch, named sets referenced by name only."""
    return encode_rule(r)


def _rule_bodies(batch: Batch) -> list[bytes]:
    return [m.body for m in batch.messages if m.kind == NFT_MSG_NEWRULE]


def _set_ids(batch: Batch) -> list[int]:
    """The transaction id of every set the batch creates, in order."""
    return [_tlv.get_be32(_tlv.parse_attrs(m.body)[NFTA_SET_ID]) for m in batch.messages if m.kind == NFT_MSG_NEWSET]


@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("created", [False, True])
def test_named_sets_are_referenced_by_name_whether_the_batch_creates_them_or_not(negate: bool, created: bool) -> None:
    r = rule(T, "c", in_set(IP_SADDR, "addrs", negate=negate), vmap(IIFNAME, "ifaces"), comment="x")
    for _ in range(2):  # the second batch uses the plans the first one made
        batch = Batch()
        if created:
            batch.add_set(VMAP)
            batch.add_set(ADDRS)
        batch.add_rule(r)
        assert _rule_bodies(batch) == [_afresh(r)]


def test_an_anonymous_set_shared_by_rules_gets_an_id_of_its_own_in_each() -> None:
    match = in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)], negate=True)
    first, second = rule(T, "a", match, ACCEPT), rule(T, "b", match, ACCEPT)
    anonymous = next(e for e in first.exprs if isinstance(e, Lookup))
    assert isinstance(anonymous.set, AnonymousSet)
    spec = SetSpec(T.name, ANONYMOUS_NAME, anonymous.set.key, anonymous.set.interval, True, None, True)
    batches = []
    for _ in range(2):  # the second batch uses the plans the first one made
        batch = Batch()
        batch.add_set(ADDRS)
        batch.add_rule(first)
        batch.add_rule(second)
        named_id, *ids = _set_ids(batch)
        assert len({named_id, *ids}) == 3, "every set of a batch has its own transaction id"
        expected = []
        for r, set_id in zip((first, second), ids, strict=True):
            expected.append(encode_set(spec, set_id, declared_size(spec, anonymous.set.elements)))
            expected.extend(encode_element_lists(spec, set_id, anonymous.set.elements))
            bound = tuple(
                dataclasses.replace(e, set=ANONYMOUS_NAME, set_id=set_id) if e is anonymous else e for e in r.exprs
            )
            expected.append(encode_rule(Rule(T, r.chain, bound)))
        assert [m.body for m in batch.messages][2:] == expected
        batches.append(batch.encode(1).data)
    assert batches[0] == batches[1], "the same objects give the same bytes in every batch"


def test_the_same_rule_twice_in_a_batch_gets_fresh_anonymous_sets() -> None:
    r = rule(T, "a", in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)]), ACCEPT)
    batch = Batch()
    batch.add_rule(r)
    batch.add_rule(r)
    ids = _set_ids(batch)
    assert len(ids) == 2 and ids[0] != ids[1]
    lookups = _rule_bodies(batch)
    assert lookups[0] != lookups[1] and all(i.to_bytes(4, "big") in b for i, b in zip(ids, lookups, strict=True))


def test_set_ids_are_unique_across_objects() -> None:
    sets = [Set(T, f"s{i}", (IPV4_ADDR,), elements=(SetElement(0x0A000000 + i),)) for i in range(50)]
    batch = Batch()
    for s in sets:
        batch.add_set(s)
    assert len(set(_set_ids(batch))) == 50


def test_a_plan_is_freed_with_its_object_without_the_cyclic_collector() -> None:
    """Plans hold no reference back to their object: dropping the last reference frees both at once."""
    gc.disable()
    try:
        _build_and_drop()
    finally:
        gc.enable()


def _build_and_drop() -> None:
    s = Set(T, "big", (IPV4_ADDR,), elements=tuple(SetElement(0x0A000000 + i) for i in range(10)))
    r = rule(T, "a", in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)]), ACCEPT)
    batch = Batch()
    batch.add_set(s, flush=True)
    batch.add_rule(r)
    refs = [weakref.ref(s), weakref.ref(r)]
    del batch, s, r
    assert [ref() for ref in refs] == [None, None]
