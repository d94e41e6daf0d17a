"""Wire plans: a set's or a rule's messages without their batch-local set ids, encoded once per object.

Why: a daemon's rulesets share their `Set` and `Rule` objects (trinet's mapping memoises them per policy), so the
same object goes into many batches; over a 1,000-pod cluster, 1,415 distinct sets make 6,402 set uses and 2,854
distinct rules make 14,129 rule uses. Everything in their messages but the transaction ids of sets created in the
batch (`NFTA_SET_ID`, `NFTA_SET_ELEM_LIST_SET_ID`, a lookup's set id) is the same in every batch, so it is encoded
the first time and the batch only splices the ids in: the bytes are those of encoding from scratch.

What bounds it: a plan is stored in its object's own `__dict__` and is freed with the object; nothing is kept
process-wide. The model values are frozen, so a plan never goes stale. A set's plan holds about as many bytes as
its element messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlink_nft import _objects, _sets, _tlv
from netlink_nft._const import NFTA_RULE_EXPRESSIONS, NFTA_SET_NAME, NFTA_SET_TABLE
from netlink_nft._elements import AnonymousSet, SetElement
from netlink_nft._expr import Lookup, encode_expr
from netlink_nft._model import Rule, Set, Table

_ATTR = "_wire_plan"  # the instance attribute that holds an object's plan


@dataclass(frozen=True, slots=True)
class SetPlan:
    """NEWSET is `newset_head` + id + `newset_tail`; each NEWSETELEM is `elements_head` + id + one of
    `element_nests`; `ref` (table and name) is the body of a flush."""

    newset_head: bytes
    newset_tail: bytes
    elements_head: bytes
    element_nests: tuple[bytes, ...]
    ref: bytes
    detail: str  # the element messages' `Message.detail`


SetKey = tuple[int, str, str]  # family, table and set name: how a batch finds the id of a set it creates


def set_key(table: Table, name: str) -> SetKey:
    return table.family, table.name, name


@dataclass(frozen=True, slots=True)
class NamedLookup:
    """A lookup of a named set: `unbound` if the batch does not create the set, else `head` + its id + `tail`."""

    key: SetKey
    unbound: bytes
    head: bytes
    tail: bytes


@dataclass(frozen=True, slots=True)
class AnonymousLookup:
    """A lookup of an anonymous set: the batch creates the set (new id) just before the rule; the lookup is
    `head` + that id + `tail`."""

    set: SetPlan
    head: bytes
    tail: bytes


@dataclass(frozen=True, slots=True)
class RulePlan:
    """NEWRULE is `head` + the expression list of `exprs` (lookups bound by the batch) + `tail`; `body` is all of
    it when no expression depends on the batch."""

    head: bytes
    exprs: tuple[bytes | NamedLookup | AnonymousLookup, ...]
    tail: bytes
    body: bytes | None


def _encode_set(spec: _sets.SetSpec, elements: tuple[SetElement, ...]) -> SetPlan:
    head, tail = _sets.encode_set_parts(spec, _sets.declared_size(spec, elements))
    return SetPlan(
        head,
        tail,
        _sets.element_list_head(spec, None),
        tuple(_sets.element_list_nests(spec, elements)),
        _tlv.strz(NFTA_SET_TABLE, spec.table) + _tlv.strz(NFTA_SET_NAME, spec.name),
        f"elements of {spec.name}",
    )


def set_plan(set_: Set) -> SetPlan:
    """The plan of a named set (or map) holding all its elements."""
    plan: SetPlan | None = set_.__dict__.get(_ATTR)
    if plan is None:
        spec = _sets.SetSpec(set_.table.name, set_.name, set_.key, set_.interval, set_.constant, set_.data)
        plan = set_.__dict__[_ATTR] = _encode_set(spec, set_.elements)
    return plan


def _expr(rule: Rule, expr: object) -> bytes | NamedLookup | AnonymousLookup:
    if type(expr) is not Lookup:
        return encode_expr(expr)  # type: ignore[arg-type]
    if isinstance(expr.set, str):
        head, tail = expr.encode_bound_parts(expr.set)
        return NamedLookup(set_key(rule.table, expr.set), expr.encode_bound(expr.set, None), head, tail)
    head, tail = expr.encode_bound_parts(_sets.ANONYMOUS_NAME)
    return AnonymousLookup(_anonymous_plan(rule.table.name, expr.set), head, tail)


def _anonymous_plan(table: str, anonymous: AnonymousSet) -> SetPlan:
    """The plan of an anonymous set in `table`, kept on the set: rules built from the same match share it."""
    plans: dict[str, SetPlan] = anonymous.__dict__.setdefault(_ATTR, {})
    plan = plans.get(table)
    if plan is None:
        spec = _sets.SetSpec(table, _sets.ANONYMOUS_NAME, anonymous.key, anonymous.interval, True, anonymous.data, True)
        plan = plans[table] = _encode_set(spec, anonymous.elements)
    return plan


def rule_plan(rule: Rule) -> RulePlan:
    plan: RulePlan | None = rule.__dict__.get(_ATTR)
    if plan is None:
        exprs = tuple(_expr(rule, e) for e in rule.exprs)
        head, tail = _objects.rule_head(rule), _objects.rule_tail(rule)
        fixed = all(type(e) is bytes for e in exprs)
        body = head + _tlv.nest(NFTA_RULE_EXPRESSIONS, *exprs) + tail if fixed else None  # type: ignore[arg-type]
        plan = rule.__dict__[_ATTR] = RulePlan(head, exprs, tail, body)
    return plan
