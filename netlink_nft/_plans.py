"""Wire segments: an object's messages, framed once and spliced whole into every batch that holds the object.

Why: a daemon's rulesets share their `Set` and `Rule` objects (trinet's mapping memoises them per policy), so the
same object goes into many batches; over a 1,000-pod cluster, 1,415 distinct sets make 6,402 set uses and 2,854
distinct rules make 14,129 rule uses. A `Segment` holds an object's messages already framed (netlink header and
nfgenmsg included, sequence number 0 and no NLM_F_ACK), so a batch only lists segments, and encoding joins them
and writes each message's sequence number.

What makes the bytes batch-independent: transaction ids (NEWSET requires one) come from one process-wide counter,
given to a set when its segment is made, so no two sets of a batch share one until the 32-bit counter wraps. A
named set is referenced by name only: the kernel resolves a name first among the sets active in the transaction's
next generation, which includes the sets created earlier in the same batch, and turns to the id only when the name
is not found (`nft_set_lookup_global`, since 4.16); `nft` sends the ids anyway. An anonymous set is referenced by
its id, and binds to one rule only: a batch that would hold an id twice (the same rule object added twice, or a
wrapped counter) gets a copy of the rule's segment with fresh ids that it does not hold (`Batch.add_rules`).

What bounds it: a plan is stored in its object's own `__dict__` and is freed with the object (it holds no reference
back to it); process-wide there are only the id counter and small memos (numbered element headers, names). The
model values are frozen, so a plan never goes stale. A set's plan holds its element messages once, twice only if
batches add the same set both with and without the flush (`SetPlan`).
"""

from __future__ import annotations

import itertools
import operator
import struct
import sys
from collections.abc import Set as AbstractSet

import msgspec

from netlink_nft import _objects, _sets, _tlv
from netlink_nft._const import (
    NFNL_SUBSYS_NFTABLES,
    NFT_MSG_DELRULE,
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    NFT_MSG_NEWTABLE,
    NFTA_RULE_EXPRESSIONS,
    NFTA_SET_ELEM_LIST_SET_ID,
    NFTA_SET_ID,
    NLA_F_NESTED,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_REQUEST,
)
from netlink_nft._elements import AnonymousSet
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import Lookup, encode_expr
from netlink_nft._model import Chain, Rule, Set, Table

_ATTR = "_wire_plan"  # the instance attribute that holds an object's plan
_HEADER = struct.Struct("=IHHIIBBH")  # nlmsghdr + nfgenmsg (res_id 0)
HEADER_SIZE = _HEADER.size
_SUBSYS = NFNL_SUBSYS_NFTABLES << 8
CREATE = NLM_F_REQUEST | NLM_F_CREATE
_APPEND = CREATE | NLM_F_APPEND
_BE32 = struct.Struct(">I")
_HEADER_FIELDS = struct.Struct("=IHH")
_SEQ_OFFSET = 8  # of nlmsg_seq in the header; messages are 4-byte aligned, so it is a whole 32-bit word
SEQ_WORD_OF_FIRST = (_SEQ_OFFSET >> 2,)  # the one tuple every one-message segment holds (the batch tests identity)
_NEWRULE = _SUBSYS | NFT_MSG_NEWRULE
_NEWSET = _SUBSYS | NFT_MSG_NEWSET
_NEWSETELEM = _SUBSYS | NFT_MSG_NEWSETELEM
_DELSETELEM = _SUBSYS | NFT_MSG_DELSETELEM
_EXPRESSIONS = NFTA_RULE_EXPRESSIONS | NLA_F_NESTED
_ATTR_HEADER = struct.Struct("=HH")
ACK_FLAG_BYTE = 6 if sys.byteorder == "little" else 7  # the byte of nlmsg_flags that holds NLM_F_ACK (0x4)


def frame(kind: int, flags: int, family: int, body: bytes) -> bytes:
    """One nf_tables message: header (sequence number 0), nfgenmsg, body."""
    return _HEADER.pack(HEADER_SIZE + len(body), _SUBSYS | kind, flags, 0, 0, family, 0, 0) + body


class _Plan(msgspec.Struct, frozen=True, gc=False):
    """Base of the plan values: they hold only bytes, numbers, strings and other plan values, never a model object
    (which holds them), so they are never part of a reference cycle and need not be tracked by the cyclic collector
    (a daemon keeps tens of thousands of them)."""


class Segment(_Plan, frozen=True, gc=False):
    """Consecutive messages of one object, framed: message i starts at `offsets[i]` of `data`."""

    data: bytes
    words: int  # len(data) // 4 (messages are 4-byte aligned): where the next segment of a batch starts
    offsets: tuple[int, ...]
    details: tuple[str, ...]
    set_ids: tuple[int, ...] = ()  # transaction ids of the sets it creates
    seq_words: tuple[int, ...] = SEQ_WORD_OF_FIRST  # each message's sequence number, as an index of 32-bit words

    def message(self, index: int) -> tuple[int, int, int, bytes]:
        """(kind, flags, family, body) of message `index`."""
        at = self.offsets[index]
        length, kind, flags = _HEADER_FIELDS.unpack_from(self.data, at)
        return kind & 0xFF, flags, self.data[at + 16], self.data[at + HEADER_SIZE : at + length]


_FIRST = (0,)
_ANONYMOUS_ELEMENTS = f"elements of {_sets.ANONYMOUS_NAME}"
_NO_DETAIL = ("",)


def segment(family: int, messages: list[tuple[int, int, bytes, str]], set_ids: tuple[int, ...] = ()) -> Segment:
    """A segment of (kind, flags, body, detail) messages."""
    if len(messages) == 1:  # the usual case, without the lists
        ((kind, flags, body, detail),) = messages
        return single(kind, flags, family, body, detail, set_ids)
    frames: list[bytes] = []
    offsets: list[int] = []
    details: list[str] = []
    seq_words: list[int] = []
    at = 0
    for kind, flags, body, detail in messages:  # one loop: a rule with an anonymous set comes here every time
        message = frame(kind, flags, family, body)
        frames.append(message)
        offsets.append(at)
        details.append(detail)
        seq_words.append((at + _SEQ_OFFSET) >> 2)
        at += len(message)
    return Segment(b"".join(frames), at >> 2, tuple(offsets), tuple(details), set_ids, tuple(seq_words))


def single(kind: int, flags: int, family: int, body: bytes, detail: str = "", set_ids: tuple[int, ...] = ()) -> Segment:
    """A segment of one message."""
    message = frame(kind, flags, family, body)
    return Segment(message, len(message) >> 2, _FIRST, (detail,) if detail else _NO_DETAIL, set_ids)


_NEW_TABLE = "_wire_new_table"  # instance attributes holding a table's (by flags) and a chain's segments
_NEW_CHAIN = "_wire_new_chain"
_FLUSH_CHAIN = "_wire_flush_chain"
_NEW_FLUSHED_CHAIN = "_wire_new_flushed_chain"
# what is kept on each object, None if not made yet (the model's class defaults): read in one C-level pass
kept_plan = operator.attrgetter(_ATTR)  # of a Set (SetPlan) or a Rule (Segment)
kept_chain_segment = operator.attrgetter(_NEW_CHAIN)
kept_flushed_chain_segment = operator.attrgetter(_NEW_FLUSHED_CHAIN)


def table_segment(table: Table, flags: int) -> Segment:
    """NEWTABLE with `flags`, kept on the table."""
    d = table.__dict__
    kept: dict[int, Segment] | None = d.get(_NEW_TABLE)
    found = None if kept is None else kept.get(flags)
    if found is None:
        message = frame(NFT_MSG_NEWTABLE, flags, table.family, _objects.encode_table(table))
        found = Segment(message, len(message) >> 2, _FIRST, _NO_DETAIL)
        d.setdefault(_NEW_TABLE, {})[flags] = found
    return found


def chain_segment(chain: Chain) -> Segment:
    """NEWCHAIN (create or update), kept on the chain."""
    d = chain.__dict__
    found: Segment | None = d.get(_NEW_CHAIN)
    if found is None:
        body = _objects.encode_chain(chain)
        message = frame(NFT_MSG_NEWCHAIN, CREATE, d["table"].family, body)
        found = d[_NEW_CHAIN] = Segment(message, len(message) >> 2, _FIRST, _NO_DETAIL)
    return found


_FLUSH_DETAIL = ("flush",)


def chain_flush_segment(chain: Chain) -> Segment:
    """The DELRULE that empties the chain, kept on the chain."""
    d = chain.__dict__
    found: Segment | None = d.get(_FLUSH_CHAIN)
    if found is None:
        table = d["table"]
        body = _objects.encode_flush(table, d["name"])
        message = frame(NFT_MSG_DELRULE, NLM_F_REQUEST, table.family, body)
        found = d[_FLUSH_CHAIN] = Segment(message, len(message) >> 2, _FIRST, _FLUSH_DETAIL)
    return found


def chain_flushed_segment(chain: Chain) -> Segment:
    """NEWCHAIN then the DELRULE that empties the chain (a chain that may exist already), one segment kept on the
    chain: a first install adds both for every chain."""
    d = chain.__dict__
    found: Segment | None = d.get(_NEW_FLUSHED_CHAIN)
    if found is None:
        found = d[_NEW_FLUSHED_CHAIN] = _with_second(chain_segment(chain), chain_flush_segment(chain).data)
    return found


_ids = itertools.count(1)


def new_set_id() -> int:
    """A set's transaction id, unique in this process until the 32-bit space wraps (1 .. 2**32-1)."""
    return next(_ids) % 0xFFFFFFFF + 1


# --- named sets --------------------------------------------------------------------------------------------------


class SetPlan(msgspec.Struct, gc=False):
    """A named set's messages as one segment (one part in a batch), in the forms batches asked for: NEWSET then
    the NEWSETELEMs (`plain`), or NEWSET, the flush (a DELSETELEM of every element), then the NEWSETELEMs
    (`flushed`). A plan is made in the form first asked for, and the other is spliced from it (the flush cut out
    or put in) if a batch asks for it too: a daemon adds its sets with the flush when it knows nothing of the
    table (its start-up) and without it otherwise, so one set seldom needs both (then its elements are held
    twice). Neither form is ever dropped, so threads that race on a plan at worst both make a form. Like
    `_Plan`, never part of a cycle."""

    made_plain: Segment | None
    made_flushed: Segment | None
    family: int
    ref: bytes  # table and set: also the whole body of the flush


def plain_form(plan: SetPlan) -> Segment:
    """NEWSET and the NEWSETELEMs."""
    found = plan.made_plain
    if found is None:
        flushed = plan.made_flushed
        assert flushed is not None  # a plan is made with one form and never loses it
        found = plan.made_plain = _without_second(flushed)
    return found


def flushed_plan(set_: Set) -> SetPlan:
    """`set_plan` of a set that is first added with the flush."""
    return set_plan(set_, True)


def flushed_form(plan: SetPlan) -> Segment:
    """NEWSET, the flush and the NEWSETELEMs."""
    found = plan.made_flushed
    if found is None:
        plain = plan.made_plain
        assert plain is not None  # a plan is made with one form and never loses it
        found = plan.made_flushed = _with_second(plain, frame(NFT_MSG_DELSETELEM, NLM_F_REQUEST, plan.family, plan.ref))
    return found


def _with_second(segment: Segment, flush: bytes) -> Segment:
    """`segment` with the message `flush` spliced in after its first message."""
    data, offsets = segment.data, segment.offsets
    cut = offsets[1] if len(offsets) > 1 else len(data)
    shift = len(flush)
    return Segment(
        b"".join((data[:cut], flush, data[cut:])),
        segment.words + (shift >> 2),
        (0, cut, *(offset + shift for offset in offsets[1:])),
        (segment.details[0], "flush", *segment.details[1:]),
        segment.set_ids,
        (segment.seq_words[0], (cut + _SEQ_OFFSET) >> 2, *(word + (shift >> 2) for word in segment.seq_words[1:])),
    )


def _without_second(segment: Segment) -> Segment:
    """`segment` without its second message (the inverse of `_with_second`)."""
    data, offsets = segment.data, segment.offsets
    cut = offsets[1]
    end = offsets[2] if len(offsets) > 2 else len(data)
    shift = end - cut
    return Segment(
        data[:cut] + data[end:],
        segment.words - (shift >> 2),
        (0, *(offset - shift for offset in offsets[2:])),
        (segment.details[0], *segment.details[2:]),
        segment.set_ids,
        (segment.seq_words[0], *(word - (shift >> 2) for word in segment.seq_words[2:]))
        if len(offsets) > 2
        else SEQ_WORD_OF_FIRST,  # one message left: the tuple the batch recognises
    )


_new_spec = tuple.__new__  # SetSpec's generated __new__ is a Python function around this; one set plan makes one


def spec_of(set_: Set) -> _sets.SetSpec:
    d = set_.__dict__
    return _new_spec(
        _sets.SetSpec, (d["table"].name, d["name"], d["key"], d["interval"], d["constant"], d["data"], False)
    )


_SET_ID_HEADER = _tlv.be32(NFTA_SET_ID, 0)[:4]


def set_plan(set_: Set, flush: bool = False) -> SetPlan:
    """The plan of a named set (or map) holding all its elements; a new plan is made in the form `flush` asks
    for (the other is made from it when a batch asks)."""
    plan: SetPlan | None = set_.__dict__.get(_ATTR)
    if plan is None:
        spec = spec_of(set_)
        if "%" in spec.name:  # the kernel would take the name for a template ("%d") and pick a name of its own
            raise InvalidValue(f"{set_}: a set name must not contain '%'")
        family = set_.table.family
        head, tail = _sets.encode_set_parts(spec, 0)  # a named set declares no size
        set_id = next(_ids) % 0xFFFFFFFF + 1  # new_set_id()
        body = b"".join((head, _SET_ID_HEADER, _BE32.pack(set_id), tail))
        ref = _sets.element_list_head(spec, None)
        nests = _sets.element_list_nests(spec, set_.elements)
        # framed here, each message's header, ref and nest joined once (no copy of the elements per message)
        at = HEADER_SIZE + len(body)
        pieces = [_HEADER.pack(at, _NEWSET, CREATE, 0, 0, family, 0, 0), body]
        offsets = [0]
        seq_words = [_SEQ_OFFSET >> 2]
        details = [""]
        if flush:
            pieces += (_HEADER.pack(HEADER_SIZE + len(ref), _DELSETELEM, NLM_F_REQUEST, 0, 0, family, 0, 0), ref)
            offsets.append(at)
            seq_words.append((at + _SEQ_OFFSET) >> 2)
            details.append("flush")
            at += HEADER_SIZE + len(ref)
        detail = f"elements of {spec.name}"
        for nest in nests:
            size = HEADER_SIZE + len(ref) + len(nest)
            pieces += (_HEADER.pack(size, _NEWSETELEM, CREATE, 0, 0, family, 0, 0), ref, nest)
            offsets.append(at)
            seq_words.append((at + _SEQ_OFFSET) >> 2)
            details.append(detail)
            at += size
        if len(offsets) == 1:  # no elements, no flush
            made = Segment(b"".join(pieces), at >> 2, _FIRST, _NO_DETAIL, (set_id,))
        else:
            made = Segment(b"".join(pieces), at >> 2, tuple(offsets), tuple(details), (set_id,), tuple(seq_words))
        plan = set_.__dict__[_ATTR] = SetPlan(None, made, family, ref) if flush else SetPlan(made, None, family, ref)
    return plan


# --- rules -------------------------------------------------------------------------------------------------------


class AnonymousSetPlan(_Plan, frozen=True, gc=False):
    """An anonymous set's messages (NEWSET, then its NEWSETELEMs) framed once with sequence number 0 and the
    set's id left out: `pieces` are the bytes around each place the id goes (NEWSET's `NFTA_SET_ID`, each
    NEWSETELEM's `NFTA_SET_ELEM_LIST_SET_ID`), so the messages under an id are `packed_id.join(pieces)`. Kept on
    the set, per table: rules built from the same match share it, and binding one is a single join."""

    pieces: tuple[bytes, ...]
    size: int  # of the messages, in bytes
    offsets: tuple[int, ...]  # where each message starts
    seq_words: tuple[int, ...]  # each message's sequence number, as an index of 32-bit words
    details: tuple[str, ...]
    # the same three for the messages followed by the rule's NEWRULE: a rule with one anonymous set (the usual case)
    rule_offsets: tuple[int, ...]
    rule_seq_words: tuple[int, ...]
    rule_details: tuple[str, ...]


class AnonymousLookup(_Plan, frozen=True, gc=False):
    """A lookup of an anonymous set, created by the rule's segment just before the rule: `head` + its id + `tail`."""

    set: AnonymousSetPlan
    head: bytes
    tail: bytes


_ID_FIELD = 4  # an id attribute's 4-byte header precedes its value
_ANONYMOUS_DETAIL = "anonymous set"


def _anonymous_plan(table: Table, anonymous: AnonymousSet) -> AnonymousSetPlan:
    plans: dict[tuple[str, int], AnonymousSetPlan] = anonymous.__dict__.setdefault(_ATTR, {})
    key = (table.name, table.family)  # the family is in every message's header
    plan = plans.get(key)
    if plan is None:
        spec = _sets.SetSpec(
            table.name, _sets.ANONYMOUS_NAME, anonymous.key, anonymous.interval, True, anonymous.data, True
        )
        head, tail = _sets.encode_set_parts(spec, _sets.declared_size(spec, anonymous.elements))
        elements_head = _sets.element_list_head(spec, None)
        placeholder = _tlv.be32(NFTA_SET_ID, 0)[:_ID_FIELD]
        element_placeholder = _tlv.be32(NFTA_SET_ELEM_LIST_SET_ID, 0)[:_ID_FIELD]
        # each message cut where its id goes: (framed bytes before the id, bytes after it)
        cuts = [(frame(NFT_MSG_NEWSET, CREATE, table.family, head + placeholder + bytes(4) + tail), len(head))]
        for nest in _sets.element_list_nests(spec, anonymous.elements):
            body = elements_head + element_placeholder + bytes(4) + nest
            cuts.append((frame(NFT_MSG_NEWSETELEM, CREATE, table.family, body), len(elements_head)))
        pieces: list[bytes] = []
        offsets: list[int] = []
        carry = b""
        at = 0
        for message, before in cuts:
            cut = HEADER_SIZE + before + _ID_FIELD
            pieces.append(carry + message[:cut])
            carry = message[cut + 4 :]
            offsets.append(at)
            at += len(message)
        pieces.append(carry)
        seq_words = tuple((offset + _SEQ_OFFSET) >> 2 for offset in offsets)
        details = (_ANONYMOUS_DETAIL,) + (_ANONYMOUS_ELEMENTS,) * (len(cuts) - 1)
        plan = plans[key] = AnonymousSetPlan(
            tuple(pieces),
            at,
            tuple(offsets),
            seq_words,
            details,
            (*offsets, at),
            (*seq_words, (at + _SEQ_OFFSET) >> 2),
            (*details, ""),
        )
    return plan


def _anonymous_lookup(table: Table, expr: Lookup) -> AnonymousLookup:
    """Kept on the lookup, per table: a list of ports or types is one shared match (`in_set`)."""
    kept: dict[tuple[str, int], AnonymousLookup] = expr.__dict__.setdefault(_ATTR, {})
    key = (table.name, table.family)
    found = kept.get(key)
    if found is None:
        assert isinstance(expr.set, AnonymousSet)
        head, tail = expr.encode_bound_parts(_sets.ANONYMOUS_NAME)
        found = kept[key] = AnonymousLookup(_anonymous_plan(table, expr.set), head, tail)
    return found


def bind(
    rule: Rule,
    head: bytes,
    parts: list[bytes | AnonymousLookup],
    anonymous: list[int],
    tail: bytes,
    avoid: AbstractSet[int],
) -> Segment:
    """The segment of a rule whose encoded expressions `parts` hold anonymous lookups at the indexes `anonymous`,
    each set created under a new id (none in `avoid`) just before the rule: its plan's pieces joined with the id."""
    out: list[bytes] = []  # the segment's bytes
    ids: list[int] = []
    plans: list[AnonymousSetPlan] = []
    for i in anonymous:
        lookup = parts[i]
        assert type(lookup) is AnonymousLookup
        set_id = next(_ids) % 0xFFFFFFFF + 1  # new_set_id()
        while set_id in avoid or set_id in ids:  # only after the 32-bit counter wrapped
            set_id = new_set_id()
        ids.append(set_id)
        packed = _BE32.pack(set_id)
        plan = lookup.set
        plans.append(plan)
        out.append(packed.join(plan.pieces))
        parts[i] = lookup.head + packed + lookup.tail
    expressions = b"".join(parts)  # type: ignore[arg-type]  # all bytes now; 4-byte aligned: no padding
    size = HEADER_SIZE + len(head) + 4 + len(expressions) + len(tail)
    out += (
        _HEADER.pack(size, _NEWRULE, _APPEND, 0, 0, rule.table.family, 0, 0),
        head,
        _ATTR_HEADER.pack(4 + len(expressions), _EXPRESSIONS),
        expressions,
        tail,
    )
    if len(plans) == 1:  # the usual case: the layout is the plan's
        (plan,) = plans
        data = b"".join(out)
        return Segment(data, len(data) >> 2, plan.rule_offsets, plan.rule_details, tuple(ids), plan.rule_seq_words)
    offsets: list[int] = []
    seq_words: list[int] = []
    details: list[str] = []
    at = 0
    for plan in plans:
        offsets += [at + offset for offset in plan.offsets]
        seq_words += [(at >> 2) + word for word in plan.seq_words]
        details += plan.details
        at += plan.size
    offsets.append(at)
    seq_words.append((at + _SEQ_OFFSET) >> 2)
    details.append("")
    data = b"".join(out)
    return Segment(data, len(data) >> 2, tuple(offsets), tuple(details), tuple(ids), tuple(seq_words))


_ENCODED = operator.attrgetter("_encoded")


def rule_segment(rule: Rule) -> Segment:
    """The rule's segment (its anonymous sets, if any, created under ids of their own just before it), kept on
    the rule."""
    found: Segment | None = rule.__dict__.get(_ATTR)
    if found is None:
        found = rule.__dict__[_ATTR] = rebound(rule)
    return found


def rebound(rule: Rule, avoid: AbstractSet[int] = frozenset()) -> Segment:
    """A new segment of the rule, its anonymous sets under new ids none of which is in `avoid` (not kept: for a
    batch that holds the rule's own segment already)."""
    d = rule.__dict__
    table = d["table"]
    exprs = d["exprs"]
    # what `encode_expr` keeps on each expression (the matchers share expressions), read in one C-level pass
    parts: list[bytes | AnonymousLookup | None] = list(map(_ENCODED, exprs))
    anonymous: list[int] | None = None  # the indexes of the anonymous lookups
    if None in parts:
        for i, expr in enumerate(exprs):
            if parts[i] is None:
                if type(expr) is Lookup and type(expr.set) is not str:
                    parts[i] = _anonymous_lookup(table, expr)
                    anonymous = [i] if anonymous is None else [*anonymous, i]
                else:
                    parts[i] = encode_expr(expr)  # a named set's lookup by name only, like every other expression
    head = _objects.rule_place(table.name, d["chain"]) if d["handle"] is None else _objects.rule_head(rule)
    tail = b"" if d["comment"] is None else _objects.rule_tail(rule)
    if anonymous is not None:
        return bind(rule, head, parts, anonymous, tail, avoid)  # type: ignore[arg-type]  # no None left
    # the usual case, no anonymous set: one message, no id (expressions are 4-byte aligned: no padding)
    payload = b"".join(parts)  # type: ignore[arg-type]  # all bytes: no None, no anonymous lookup
    size = HEADER_SIZE + len(head) + 4 + len(payload) + len(tail)  # `frame` written out: once per rule
    message = b"".join(
        (
            _HEADER.pack(size, _NEWRULE, _APPEND, 0, 0, table.family, 0, 0),
            head,
            _ATTR_HEADER.pack(4 + len(payload), _EXPRESSIONS),
            payload,
            tail,
        )
    )
    return Segment(message, len(message) >> 2, _FIRST, _NO_DETAIL)
