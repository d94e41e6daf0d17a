"""The model's fast constructors and the matchers' caches behave exactly like plain frozen values."""

from __future__ import annotations

import dataclasses

import pytest

from netlink_nft import (
    ACCEPT,
    ICMPV6_TYPE_FIELD,
    INET_SERVICE,
    IPV4_ADDR,
    TCP_DPORT,
    Batch,
    Chain,
    CtState,
    Family,
    Hook,
    InvalidValue,
    Lookup,
    Policy,
    Rule,
    Set,
    SetElement,
    Table,
    _tlv,
    ct_state,
    in_set,
    jump,
    rule,
    vmap,
)
from netlink_nft._const import NFT_MSG_NEWSET, NFT_REG_VERDICT, NFTA_SET_ID

T = Table(Family.INET, "t")


def test_set_normalises_and_stays_frozen_whatever_constructor_form() -> None:
    positional = Set(
        T, "s", (IPV4_ADDR,), True, False, None, [SetElement("10.0.0.2"), SetElement.network("10.0.0.0/24")]
    )
    keywords = Set(table=T, name="s", key=(IPV4_ADDR,), interval=True, elements=(SetElement.network("10.0.0.0/24"),))
    assert positional == keywords and hash(positional) == hash(keywords)
    assert positional.key == (IPV4_ADDR,) and isinstance(positional.elements, tuple)
    assert positional.elements == (SetElement.network("10.0.0.0/24"),)  # the single address merged into the range
    with pytest.raises(dataclasses.FrozenInstanceError):
        positional.name = "other"  # type: ignore[misc]
    renamed = dataclasses.replace(positional, name="r")
    assert renamed.name == "r" and renamed.elements == positional.elements
    with pytest.raises(InvalidValue):
        Set(T, "s", (INET_SERVICE,), elements=(SetElement(70_000),))


def test_rule_takes_any_sequence_and_ignores_the_handle_in_comparisons() -> None:
    exprs = rule(T, "c", ACCEPT).exprs
    from_list = Rule(T, "c", list(exprs))
    assert from_list.exprs == exprs and isinstance(from_list.exprs, tuple)
    assert from_list == Rule(T, "c", exprs, handle=7) and hash(from_list) == hash(Rule(T, "c", exprs, handle=7))
    assert Rule(T, "c", exprs, "note").comment == "note"
    assert dataclasses.replace(from_list, handle=3).handle == 3


def test_chain_defaults_and_keywords() -> None:
    assert Chain(T, "c") == Chain(T, "c", None, 0, Policy.ACCEPT, "filter")
    base = Chain(T, "in", Hook.INPUT, priority=-10, policy=Policy.DROP, type="filter")
    assert (base.hook, base.priority, base.policy, base.is_base) == (Hook.INPUT, -10, Policy.DROP, True)
    assert [f.name for f in dataclasses.fields(Chain)] == ["table", "name", "hook", "priority", "policy", "type"]


def test_constant_anonymous_sets_are_shared_but_bad_values_are_still_refused() -> None:
    first = in_set(ICMPV6_TYPE_FIELD, (133, 134))
    again = in_set(ICMPV6_TYPE_FIELD, [134, 133])
    lookups = [e for m in (first, again) for e in m.exprs if isinstance(e, Lookup)]
    assert lookups[0] == lookups[1]
    assert in_set(TCP_DPORT, [80]).exprs[-1] == in_set(TCP_DPORT, (80,)).exprs[-1]
    assert in_set(TCP_DPORT, [80]).exprs[-1] != in_set(TCP_DPORT, [81]).exprs[-1]
    with pytest.raises(InvalidValue):
        in_set(TCP_DPORT, [80.0])  # type: ignore[list-item]  # equal to 80 and hashed alike: must not be served from the cache
    with pytest.raises(InvalidValue):
        in_set(TCP_DPORT, [70_000])
    with pytest.raises(InvalidValue):
        in_set(TCP_DPORT, [70_000])  # a failure is not cached either


def test_a_shared_constant_match_still_gives_each_rule_a_set_of_its_own() -> None:
    match = in_set(ICMPV6_TYPE_FIELD, (133, 134))
    assert match is in_set(ICMPV6_TYPE_FIELD, [133, 134]) and match != in_set(
        ICMPV6_TYPE_FIELD, (133, 134), negate=True
    )
    batch = Batch()
    batch.add_rules([rule(T, "a", match, ACCEPT), rule(T, "b", match, ACCEPT), rule(T, "a", match, ACCEPT)])
    ids = [_tlv.get_be32(_tlv.parse_attrs(m.body)[NFTA_SET_ID]) for m in batch.messages if m.kind == NFT_MSG_NEWSET]
    assert len(ids) == len(set(ids)) == 3


def test_cached_helpers_return_equal_values() -> None:
    assert jump("c") == jump("c") and jump("c").chain == "c"
    assert ct_state(CtState.ESTABLISHED, CtState.RELATED) == ct_state(CtState.RELATED | CtState.ESTABLISHED)
    assert ct_state(CtState.NEW) != ct_state(CtState.ESTABLISHED)


def test_named_lookups_are_shared_per_fields_name_negation_and_kind() -> None:
    plain, negated = in_set(TCP_DPORT, "ports"), in_set(TCP_DPORT, "ports", negate=True)
    assert plain == in_set(TCP_DPORT, "ports") and plain != negated
    lookups = [m.exprs[-1] for m in (plain, negated, vmap(TCP_DPORT, "ports"), in_set((TCP_DPORT,), "other"))]
    assert all(isinstance(e, Lookup) for e in lookups)
    assert [(e.set, e.invert, e.dreg) for e in lookups if isinstance(e, Lookup)] == [
        ("ports", False, None),
        ("ports", True, None),
        ("ports", False, NFT_REG_VERDICT),
        ("other", False, None),
    ]
