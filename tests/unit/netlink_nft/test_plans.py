"""Wire plans (bodies encoded once per object, set ids spliced in per batch) give the bytes of encoding afresh."""

from __future__ import annotations

import dataclasses

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
    in_set,
    jump,
    rule,
    vmap,
)
from netlink_nft._const import NFT_MSG_NEWRULE
from netlink_nft._elements import AnonymousSet
from netlink_nft._objects import encode_rule
from netlink_nft._sets import ANONYMOUS_NAME, SetSpec, declared_size, encode_element_lists, encode_set

T = Table(Family.INET, "t")
ADDRS = Set(T, "addrs", (IPV4_ADDR,), interval=True, elements=(SetElement.interval(0x0A000000, 0x0A0000FF),))
VMAP = Set(T, "ifaces", (IFNAME,), data=VERDICT, elements=(SetElement("eth0", data=jump("c")),))


def _afresh(r: Rule, set_ids: dict[str, int]) -> bytes:
    """The NEWRULE body from scratch: every lookup bound to its set's id (None if the batch does not create it)."""
    exprs = tuple(
        dataclasses.replace(e, set_id=set_ids.get(e.set)) if isinstance(e, Lookup) and isinstance(e.set, str) else e
        for e in r.exprs
    )
    return encode_rule(Rule(r.table, r.chain, exprs, r.comment, r.handle))


def _rule_bodies(batch: Batch) -> list[bytes]:
    return [m.body for m in batch.messages if m.kind == NFT_MSG_NEWRULE]


@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("created", [False, True])
def test_named_lookups_splice_the_id_of_a_set_created_in_the_batch(negate: bool, created: bool) -> None:
    r = rule(T, "c", in_set(IP_SADDR, "addrs", negate=negate), vmap(IIFNAME, "ifaces"), comment="x")
    for _ in range(2):  # the second batch uses the plans the first one made
        batch = Batch()
        if created:
            batch.add_set(VMAP)  # id 1
            batch.add_set(ADDRS)  # id 2
        batch.add_rule(r)
        assert _rule_bodies(batch) == [_afresh(r, {"ifaces": 1, "addrs": 2} if created else {})]


def test_an_anonymous_set_shared_by_rules_gets_a_new_id_in_each() -> None:
    match = in_set(IP_SADDR, [SetElement(0x0A000001), SetElement(0x0A000002)], negate=True)
    first, second = rule(T, "a", match, ACCEPT), rule(T, "b", match, ACCEPT)
    anonymous = next(e for e in first.exprs if isinstance(e, Lookup))
    assert isinstance(anonymous.set, AnonymousSet)
    spec = SetSpec(T.name, ANONYMOUS_NAME, anonymous.set.key, anonymous.set.interval, True, None, True)
    expected = []
    for r, set_id in ((first, 2), (second, 3)):  # id 1 is ADDRS
        expected.append(encode_set(spec, set_id, declared_size(spec, anonymous.set.elements)))
        expected.extend(encode_element_lists(spec, set_id, anonymous.set.elements))
        bound = tuple(
            dataclasses.replace(e, set=ANONYMOUS_NAME, set_id=set_id) if e is anonymous else e for e in r.exprs
        )
        expected.append(encode_rule(Rule(T, r.chain, bound)))
    for _ in range(2):  # the second batch uses the plans the first one made
        batch = Batch()
        batch.add_set(ADDRS)
        batch.add_rule(first)
        batch.add_rule(second)
        assert [m.body for m in batch.messages][2:] == expected
