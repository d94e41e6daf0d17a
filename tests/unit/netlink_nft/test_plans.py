"""Wire segments (messages framed once per object, set ids given once per object) give the bytes of encoding
afresh, and every set of a batch a transaction id of its own."""

from __future__ import annotations

import gc
import itertools
import struct
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
    Chain,
    Family,
    Hook,
    Lookup,
    Message,
    Policy,
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
from netlink_nft._const import (
    NFNL_SUBSYS_NFTABLES,
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_TABLE,
    NFTA_SET_ID,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_REQUEST,
)
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


def _framed(seq: int, messages: list[tuple[int, int, int, bytes]]) -> list[bytes]:
    """(kind, flags, family, body) messages framed from scratch, numbered from `seq`."""
    return [
        struct.pack("=IHHIIBBH", 20 + len(body), NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq + i, 0, family, 0, 0)
        + body
        for i, (kind, flags, family, body) in enumerate(messages)
    ]


def _expected_use(r: Rule, ids: list[int]) -> list[tuple[int, int, int, bytes]]:
    """A rule's messages encoded from scratch, its anonymous sets (in expression order) under `ids`."""
    out: list[tuple[int, int, int, bytes]] = []
    bound: list[bytes] = []
    create = NLM_F_REQUEST | NLM_F_CREATE
    pending = iter(ids)
    for e in r.exprs:
        if not (isinstance(e, Lookup) and isinstance(e.set, AnonymousSet)):
            bound.append(encode_expr(e))
            continue
        set_id = next(pending)
        spec = SetSpec(r.table.name, ANONYMOUS_NAME, e.set.key, e.set.interval, True, e.set.data, True)
        head, tail = encode_set_parts(spec, declared_size(spec, e.set.elements))
        out.append((NFT_MSG_NEWSET, create, r.table.family, head + _tlv.be32(NFTA_SET_ID, set_id) + tail))
        for body in encode_element_lists(spec, set_id, e.set.elements):
            out.append((NFT_MSG_NEWSETELEM, create, r.table.family, body))
        bound.append(e.encode_bound(ANONYMOUS_NAME, set_id))
    out.append((NFT_MSG_NEWRULE, create | NLM_F_APPEND, r.table.family, encode_rule(r, bound)))
    return out


def test_anonymous_set_templates_give_the_bytes_of_encoding_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """An anonymous set's messages are framed once and its id patched in per binding: several bindings in one
    batch, ids of every width, a set of several NEWSETELEMs, two sets in one rule, rules bound twice in a batch,
    and one match in two tables of the same name (the family is in the frame) all give the bytes of encoding each
    message from scratch."""
    forced = [0x100, 0x1FF, 0x10203, 0xFFFFFFFF, 0x01000000, 0xFF, 0xFEDCBA98]
    _forced_ids(monkeypatch, forced)
    many = [SetElement(0x0A000000 + i) for i in range(5000)]  # 80 kB of elements: two NEWSETELEM messages
    ports = in_set(TCP_DPORT, [SetElement(22), SetElement(80), SetElement(443)])
    two = rule(T, "a", in_set(IP_SADDR, many), ports, ACCEPT, comment="two sets")
    one = rule(T, "a", ports, ACCEPT)
    other_family = rule(Table(Family.IP6, T.name), "a", ports, ACCEPT)
    uses = [two, one, two, other_family, one]
    for round_ in range(2):  # the second batch uses the kept plans and segments
        batch = Batch()
        batch.add_rules(uses)
        ids = _set_ids(batch)
        assert len(ids) == 7 and len(set(ids)) == 7, "every anonymous set of the batch has an id of its own"
        if round_ == 0:
            assert sorted(ids) == sorted(forced), "the ids drawn, whatever the order"
        expected: list[tuple[int, int, int, bytes]] = []
        pending = iter(ids)
        for r in uses:
            wanted = sum(isinstance(e, Lookup) and isinstance(e.set, AnonymousSet) for e in r.exprs)
            expected += _expected_use(r, [next(pending) for _ in range(wanted)])
        assert [(m.kind, m.flags, m.family, m.body) for m in batch.messages] == expected
        assert sum(m.kind == NFT_MSG_NEWSETELEM for m in batch.messages) == 9  # the 5,000 elements take two each
        encoded = batch.encode(40)
        begin, end = encoded.data[:20], encoded.data[-20:]
        assert encoded.data[20:-20] == b"".join(_framed(41, expected))
        assert begin[8:12] == struct.pack("=I", 40) and end[8:12] == struct.pack("=I", 41 + len(expected))


@pytest.mark.parametrize("flush", [False, True])
def test_bulk_additions_give_the_messages_of_one_at_a_time(flush: bool) -> None:
    """`add_chains` and `add_sets` (what `replace_contents` uses) add what the single calls add, in order, with
    objects planned before and objects planned by the call itself."""
    chains = (Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT), Chain(T, "c0"), Chain(T, "c1"))
    sets = (ADDRS, VMAP, Set(T, "empty", (IPV4_ADDR,)), Set(T, f"new{flush}", (IPV4_ADDR,), elements=(SetElement(1),)))
    bulk = Batch()  # first: it plans the chains and the last set
    bulk.add_chains(iter(chains), flush=flush)
    bulk.add_sets(list(sets), flush=flush)
    one_at_a_time = Batch()
    for chain in chains:
        one_at_a_time.add_chain(chain)
        if flush:
            one_at_a_time.flush_chain(chain)
    for s in sets:
        one_at_a_time.add_set(s, flush=flush)
    assert len(bulk) == len(one_at_a_time) and bulk.messages == one_at_a_time.messages
    assert bulk.encode(7).data == one_at_a_time.encode(7).data


@pytest.mark.parametrize("elements", [0, 3, 5000], ids=["empty", "one list", "two lists"])
def test_a_set_added_with_and_without_the_flush_in_turn(elements: int) -> None:
    """A set plan keeps one form and splices the flush in or out: every form gives the messages and bytes of
    NEWSET, (the flush,) the NEWSETELEMs, however often it changes."""
    s = Set(T, f"turns{elements}", (IPV4_ADDR,), elements=tuple(SetElement(0x0A000000 + i) for i in range(elements)))
    first = Batch()
    first.add_set(s)
    plain = list(first.messages)
    assert len(plain) == 1 + (elements > 0) + (elements > 4000)
    ref = _tlv.strz(NFTA_SET_ELEM_LIST_TABLE, T.name) + _tlv.strz(NFTA_SET_ELEM_LIST_SET, s.name)
    flush = Message(NFT_MSG_DELSETELEM, NLM_F_REQUEST, T.family, ref, s, "flush")
    for flushed in (True, False, True, True, False, False):
        batch = Batch()
        batch.add_set(s, flush=flushed)
        expected = [plain[0], flush, *plain[1:]] if flushed else plain
        assert list(batch.messages) == expected
        framed = _framed(3, [(m.kind, m.flags, m.family, m.body) for m in expected])
        assert batch.encode(2).data[20:-20] == b"".join(framed)
