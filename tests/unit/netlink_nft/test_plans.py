"""Wire segments (messages framed once per object, set ids given once per object) give the bytes of encoding
afresh, and every set of a batch a transaction id of its own."""

from __future__ import annotations

import gc
import itertools
import weakref

import pytest

from netlink_nft import (
    ACCEPT,
    IFNAME,
    IIFNAME,
    IP_SADDR,
    IPV4_ADDR,
    TCP_DPORT,
    VERDICT,
    Batch,
    Family,
    Lookup,
    Rule,
    Set,
    SetElement,
    Table,
    _plans,
    _tlv,
    in_set,
    jump,
    rule,
    vmap,
)
from netlink_nft._const import NFT_MSG_NEWRULE, NFT_MSG_NEWSET, NFTA_SET_ID
from netlink_nft._elements import AnonymousSet
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import encode_expr
from netlink_nft._objects import encode_rule
from netlink_nft._sets import ANONYMOUS_NAME, SetSpec, declared_size, encode_element_lists, encode_set_parts

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
            head, tail = encode_set_parts(spec, declared_size(spec, anonymous.set.elements))
            expected.append(head + _tlv.be32(NFTA_SET_ID, set_id) + tail)
            expected.extend(encode_element_lists(spec, set_id, anonymous.set.elements))
            bound = [
                anonymous.encode_bound(ANONYMOUS_NAME, set_id) if e is anonymous else encode_expr(e) for e in r.exprs
            ]
            expected.append(encode_rule(r, bound))
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
    refs: list[weakref.ref[Set | Rule]] = [weakref.ref(s), weakref.ref(r)]
    del batch, s, r
    assert [ref() for ref in refs] == [None, None]


def test_rules_that_fail_to_encode_leave_the_batch_as_it_was() -> None:
    good = rule(T, "a", in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)]), ACCEPT)
    bad = rule(T, "a", ACCEPT, comment="x" * 300)  # longer than a rule comment can be
    batch = Batch()
    batch.add_rule(good)
    before = batch.messages
    with pytest.raises(InvalidValue):
        batch.add_rules([rule(T, "b", in_set(IP_SADDR, [SetElement(0x0A000003), SetElement(0x0A000004)]), ACCEPT), bad])
    assert len(batch) == len(before) and batch.messages == before
    encoded = batch.encode(10)
    assert encoded.count == len(before) and encoded.message_at(encoded.end_seq - 1) == before[-1]


def _forced_ids(monkeypatch: pytest.MonkeyPatch, ids: list[int]) -> None:
    """Make the process-wide id counter hand out `ids` (each minus one: `new_set_id` adds one), then carry on."""
    monkeypatch.setattr(_plans, "_ids", itertools.chain((i - 1 for i in ids), itertools.count(1000)))


def test_a_rule_whose_anonymous_id_a_named_set_holds_gets_fresh_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the counter wraps, a named set and an anonymous one can hold one id: the rule is rebound."""
    _forced_ids(monkeypatch, [7, 7, 7, 8])  # the named set, the rule's anonymous set, then the rebind's draws
    named = Set(T, "n", (IPV4_ADDR,), elements=(SetElement(0x0A000009),))
    r = rule(T, "a", in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)]), ACCEPT)
    batch = Batch()
    batch.add_set(named)
    batch.add_rule(r)
    assert _set_ids(batch) == [7, 8]


def test_fresh_ids_of_a_rebound_rule_avoid_every_id_of_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _forced_ids(monkeypatch, [5, 6, 5, 6, 7])  # two sets in one rule; the rebind draws 5 and 6 again, then 7
    r = rule(
        T,
        "a",
        in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)]),
        in_set(TCP_DPORT, [SetElement(22), SetElement(80)]),
        ACCEPT,
    )
    batch = Batch()
    batch.add_rules([r, r])
    first, second = _set_ids(batch)[:2], _set_ids(batch)[2:]
    assert first == [5, 6] and len(set(second)) == 2 and not set(second) & {5, 6}
