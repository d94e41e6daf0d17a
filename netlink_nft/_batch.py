"""A transaction: an ordered list of tagged nf_tables messages, framed by BATCH_BEGIN/BATCH_END.

Building a batch is pure: each message records the model object it came from (`Message.subject`) so that the
transport can name the offending object when the kernel rejects a message. The same sequence of calls always
gives the same bytes, up to the sets' transaction ids. A batch is a list of segments (`_plans`): the messages of
sets and rules are framed once per object and reused by every batch that holds the object; `encode` joins them and
numbers the messages.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TypeVar

from netlink_nft import _objects, _plans, _sets, _tlv
from netlink_nft._const import (
    NFNL_BATCH_GENID,
    NFNL_MSG_BATCH_BEGIN,
    NFNL_MSG_BATCH_END,
    NFNL_SUBSYS_NFTABLES,
    NFT_MSG_DELCHAIN,
    NFT_MSG_DELRULE,
    NFT_MSG_DELSET,
    NFT_MSG_DELSETELEM,
    NFT_MSG_DELTABLE,
    NFT_MSG_DESTROYCHAIN,
    NFT_MSG_DESTROYRULE,
    NFT_MSG_DESTROYSET,
    NFT_MSG_DESTROYTABLE,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    NFT_MSG_NEWTABLE,
    NFTA_SET_NAME,
    NFTA_SET_TABLE,
    NLM_F_ACK,
    NLM_F_EXCL,
    NLM_F_REQUEST,
)
from netlink_nft._elements import SetElement
from netlink_nft._model import Chain, Rule, Set, Table
from netlink_nft._plans import Segment

Subject = Table | Chain | Set | Rule

_DATA = operator.attrgetter("data")
_ONE_MESSAGE = _plans.SEQ_WORD_OF_FIRST  # the sequence number words of a one-message segment (one shared tuple)
(_FIRST_SEQ_WORD,) = _ONE_MESSAGE
_BEGIN_END = struct.Struct("=IHHIIBBH")  # nlmsghdr + nfgenmsg (res_id packed pre-swapped)
_RES_ID_NFTABLES = int.from_bytes(NFNL_SUBSYS_NFTABLES.to_bytes(2, "big"), sys.byteorder)  # htons(10)

MESSAGE_NAMES = {
    NFT_MSG_NEWTABLE: "NEWTABLE",
    NFT_MSG_DELTABLE: "DELTABLE",
    NFT_MSG_DESTROYTABLE: "DESTROYTABLE",
    NFT_MSG_NEWCHAIN: "NEWCHAIN",
    NFT_MSG_DELCHAIN: "DELCHAIN",
    NFT_MSG_DESTROYCHAIN: "DESTROYCHAIN",
    NFT_MSG_NEWRULE: "NEWRULE",
    NFT_MSG_DELRULE: "DELRULE",
    NFT_MSG_DESTROYRULE: "DESTROYRULE",
    NFT_MSG_NEWSET: "NEWSET",
    NFT_MSG_DELSET: "DELSET",
    NFT_MSG_DESTROYSET: "DESTROYSET",
    NFT_MSG_NEWSETELEM: "NEWSETELEM",
    NFT_MSG_DELSETELEM: "DELSETELEM",
}


@dataclass(frozen=True)
class Message:
    """One nf_tables message of a batch and the model object it was made from."""

    kind: int  # NFT_MSG_*
    flags: int
    family: int
    body: bytes
    subject: Subject
    detail: str = ""

    def describe(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{MESSAGE_NAMES.get(self.kind, self.kind)} {self.subject}{detail}"


def _message(part: Segment, subject: Subject, index: int) -> Message:
    kind, flags, family, body = part.message(index)
    return Message(kind, flags, family, body, subject, part.details[index])


def _messages(parts: Iterable[Segment], subjects: Iterable[Subject]) -> tuple[Message, ...]:
    return tuple(
        _message(part, subject, i)
        for part, subject in zip(parts, subjects, strict=True)
        for i in range(len(part.offsets))
    )


@dataclass(frozen=True)
class EncodedBatch:
    """The bytes of one transaction and the messages behind its sequence numbers."""

    data: bytes
    first_seq: int
    parts: tuple[Segment, ...] = field(repr=False, compare=False)
    subjects: tuple[Subject, ...] = field(repr=False, compare=False)  # the object of each part
    count: int  # the number of messages between BATCH_BEGIN and BATCH_END
    acked_each: bool = False  # every message carries NLM_F_ACK (commit confirmation on kernels before 6.10)

    def __init__(
        self,
        data: bytes,
        first_seq: int,
        parts: tuple[Segment, ...],
        subjects: tuple[Subject, ...],
        count: int,
        acked_each: bool = False,
    ) -> None:  # the generated one assigns each field through object.__setattr__: one of these per transaction
        d = self.__dict__
        d["data"], d["first_seq"], d["parts"], d["subjects"] = data, first_seq, parts, subjects
        d["count"], d["acked_each"] = count, acked_each

    @functools.cached_property
    def messages(self) -> tuple[Message, ...]:
        return _messages(self.parts, self.subjects)

    @property
    def end_seq(self) -> int:
        return self.first_seq + self.count + 1

    @functools.cached_property
    def _starts(self) -> list[int]:
        """The index of each part's first message."""
        return list(itertools.accumulate((len(p.offsets) for p in self.parts[:-1]), initial=0)) if self.parts else []

    def message_at(self, seq: int) -> Message | None:
        """The message sent with `seq` (None for BATCH_BEGIN/END)."""
        index = seq - self.first_seq - 1
        if not 0 <= index < self.count:
            return None
        at = bisect.bisect_right(self._starts, index) - 1
        return _message(self.parts[at], self.subjects[at], index - self._starts[at])


def _frame(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _BEGIN_END.pack(20 + len(body), kind, flags, seq, 0, 0, 0, _RES_ID_NFTABLES) + body


class Batch:
    """Builder of one transaction: objects are added in call order, each as a segment of framed messages."""

    def __init__(self) -> None:
        self._parts: list[Segment] = []
        self._subjects: list[Subject] = []
        self._count = 0
        self._set_ids: set[int] = set()  # the transaction ids of the sets created so far

    @property
    def messages(self) -> tuple[Message, ...]:
        return _messages(self._parts, self._subjects)

    def __len__(self) -> int:
        return self._count

    def _append(self, part: Segment, subject: Subject) -> None:
        self._parts.append(part)
        self._subjects.append(subject)
        self._count += len(part.offsets)

    def _add(self, kind: int, flags: int, subject: Subject, body: bytes, detail: str = "") -> None:
        family = (subject if type(subject) is Table else subject.table).family  # type: ignore[union-attr]
        self._append(_plans.single(kind, flags, family, body, detail), subject)

    # --- tables --------------------------------------------------------------------------------------------------

    def add_table(self, table: Table, *, exclusive: bool = False) -> None:
        """Create the table; without `exclusive` an existing table is fine (nft `add table`)."""
        self._append(_plans.table_segment(table, NLM_F_REQUEST | (NLM_F_EXCL if exclusive else 0)), table)

    def delete_table(self, table: Table) -> None:
        self._add(NFT_MSG_DELTABLE, NLM_F_REQUEST, table, _objects.encode_table_ref(table))

    def destroy_table(self, table: Table) -> None:
        """Delete the table if it exists (kernel >= 6.3)."""
        self._add(NFT_MSG_DESTROYTABLE, NLM_F_REQUEST, table, _objects.encode_table_ref(table))

    def flush_table(self, table: Table) -> None:
        """Delete every rule of every chain of the table."""
        self._add(NFT_MSG_DELRULE, NLM_F_REQUEST, table, _objects.encode_flush(table, None), "flush")

    # --- chains --------------------------------------------------------------------------------------------------

    def add_chain(self, chain: Chain) -> None:
        self._append(_plans.chain_segment(chain), chain)

    def delete_chain(self, chain: Chain) -> None:
        self._add(NFT_MSG_DELCHAIN, NLM_F_REQUEST, chain, _objects.encode_chain_ref(chain))

    def destroy_chain(self, chain: Chain) -> None:
        self._add(NFT_MSG_DESTROYCHAIN, NLM_F_REQUEST, chain, _objects.encode_chain_ref(chain))

    def flush_chain(self, chain: Chain) -> None:
        self._append(_plans.chain_flush_segment(chain), chain)

    def add_chains(self, chains: Iterable[Chain], *, flush: bool = False) -> None:
        """`add_chain` for each chain, in order, each followed by `flush_chain` with `flush`."""
        chains = chains if type(chains) is tuple else tuple(chains)
        if flush:  # one segment of both messages per chain
            parts = _kept(_plans.kept_flushed_chain_segment, _plans.chain_flushed_segment, chains)
        else:
            parts = _kept(_plans.kept_chain_segment, _plans.chain_segment, chains)
        self._parts += parts
        self._subjects += chains
        self._count += len(parts) * 2 if flush else len(parts)

    # --- sets ----------------------------------------------------------------------------------------------------

    def add_set(self, set_: Set, *, flush: bool = False) -> None:
        """Create the set (an existing identical set is fine) and add its elements; with `flush`, the elements
        of an existing set are deleted first, so the set ends up holding exactly `set_.elements`."""
        plan = _plans.set_plan(set_, flush)
        part = plan.made_flushed if flush else plan.made_plain
        if part is None:
            part = _plans.flushed_form(plan) if flush else _plans.plain_form(plan)
        self._set_ids.update(part.set_ids)  # a named set's id may repeat (the same set twice): never looked up
        self._parts.append(part)
        self._subjects.append(set_)
        self._count += len(part.offsets)

    def add_sets(self, sets: Iterable[Set], *, flush: bool = False) -> None:
        """`add_set` for each set, in order."""
        sets = sets if type(sets) is tuple else tuple(sets)
        if flush:  # a new plan made in the form asked for
            parts = _kept(_MADE_FLUSHED, _plans.flushed_form, _kept(_plans.kept_plan, _plans.flushed_plan, sets))
        else:
            parts = _kept(_MADE_PLAIN, _plans.plain_form, _kept(_plans.kept_plan, _plans.set_plan, sets))
        self._set_ids.update(itertools.chain.from_iterable(map(_SET_IDS, parts)))
        self._parts += parts
        self._subjects += sets
        self._count += sum(map(len, map(_OFFSETS, parts)))

    def delete_set(self, set_: Set) -> None:
        self._add(NFT_MSG_DELSET, NLM_F_REQUEST, set_, _set_ref(set_))

    def destroy_set(self, set_: Set) -> None:
        self._add(NFT_MSG_DESTROYSET, NLM_F_REQUEST, set_, _set_ref(set_))

    def flush_set(self, set_: Set) -> None:
        """Delete every element of the set."""
        self._add(NFT_MSG_DELSETELEM, NLM_F_REQUEST, set_, _set_ref(set_), "flush")

    def add_elements(self, set_: Set, elements: Iterable[SetElement]) -> None:
        self._elements(NFT_MSG_NEWSETELEM, _plans.CREATE, set_, _normalised(set_, elements))

    def delete_elements(self, set_: Set, elements: Iterable[SetElement]) -> None:
        """Delete elements; ranges of interval sets must be exactly those in the set."""
        self._elements(NFT_MSG_DELSETELEM, NLM_F_REQUEST, set_, _normalised(set_, elements))

    def _elements(self, kind: int, flags: int, set_: Set, elements: tuple[SetElement, ...]) -> None:
        spec = _plans.spec_of(set_)
        detail = f"elements of {spec.name}"
        messages = [(kind, flags, body, detail) for body in _sets.encode_element_lists(spec, None, elements)]
        if messages:
            self._append(_plans.segment(set_.table.family, messages), set_)

    # --- rules ---------------------------------------------------------------------------------------------------

    def add_rule(self, rule: Rule) -> None:
        """Append the rule to its chain; anonymous sets of its lookups are created just before it."""
        self.add_rules((rule,))

    def add_rules(self, rules: Iterable[Rule]) -> None:
        """`add_rule` for each rule, in order; nothing is added if one of them cannot be encoded."""
        rules = rules if type(rules) is tuple else tuple(rules)
        parts: list[Segment] = _kept(_plans.kept_plan, _plans.rule_segment, rules)
        ids = list(itertools.chain.from_iterable(map(_SET_IDS, parts)))
        if ids:
            used = self._set_ids
            if not used.isdisjoint(ids) or len(set(ids)) < len(ids):
                parts = _rebound(rules, parts, used)
                ids = list(itertools.chain.from_iterable(map(_SET_IDS, parts)))
            used.update(ids)
        self._parts += parts
        self._subjects += rules
        self._count += sum(map(len, map(_OFFSETS, parts)))

    def delete_rule(self, rule: Rule) -> None:
        """Delete one rule by its kernel handle (as read back by a dump)."""
        self._add(NFT_MSG_DELRULE, NLM_F_REQUEST, rule, _objects.encode_rule_ref(rule))

    def destroy_rule(self, rule: Rule) -> None:
        self._add(NFT_MSG_DESTROYRULE, NLM_F_REQUEST, rule, _objects.encode_rule_ref(rule))

    # --- encoding ------------------------------------------------------------------------------------------------

    def encode(self, seq: int = 0, *, genid: int | None = None, ack_each: bool = False) -> EncodedBatch:
        """Frame the messages with BATCH_BEGIN (seq) and BATCH_END; both END and, with `ack_each`, every message
        request an acknowledgement, so that the transport can confirm the commit on every kernel."""
        parts = tuple(self._parts)
        count = self._count
        begin = _frame(
            NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, b"" if genid is None else _tlv.be32(NFNL_BATCH_GENID, genid)
        )
        end = _frame(NFNL_MSG_BATCH_END, NLM_F_REQUEST | NLM_F_ACK, seq + count + 1, b"")
        data = bytearray().join([begin, *map(_DATA, parts), end])
        words = memoryview(data).cast("I")  # messages are 4-byte aligned: write sequence numbers as native words
        base = len(begin) >> 2  # of the part's first word
        number = seq + 1
        for part in parts:
            seq_words = part.seq_words
            if seq_words is _ONE_MESSAGE:  # most parts: no inner loop
                words[base + _FIRST_SEQ_WORD] = number
                number += 1
            else:
                for word in seq_words:
                    words[base + word] = number
                    number += 1
            base += part.words
        words.release()
        if number != seq + count + 1:
            raise AssertionError(f"batch of {count} messages numbered up to {number - 1}")  # a bug, never sent
        if ack_each:
            position = len(begin) + _plans.ACK_FLAG_BYTE
            for part in parts:
                for offset in part.offsets:
                    data[position + offset] |= NLM_F_ACK
                position += part.words << 2
        return EncodedBatch(bytes(data), seq, parts, tuple(self._subjects), count, ack_each)


_T = TypeVar("_T")
_P = TypeVar("_P")
_SET_IDS = operator.attrgetter("set_ids")
_OFFSETS = operator.attrgetter("offsets")
_MADE_FLUSHED = operator.attrgetter("made_flushed")
_MADE_PLAIN = operator.attrgetter("made_plain")


def _kept(kept: Callable[[_T], _P | None], make: Callable[[_T], _P], items: Sequence[_T]) -> list[_P]:
    """What `make` gives for each item, read through `kept` (None: not made yet) in one C-level pass and made only
    where it is missing."""
    found: list[_P | None] = list(map(kept, items))
    if None in found:
        missing = found.count(None)
        if missing == len(found):  # none made yet (a first install): make them all
            return list(map(make, items))
        i = -1
        for _ in range(missing):
            i = found.index(None, i + 1)
            found[i] = make(items[i])
    return found  # type: ignore[return-value]  # no None left


def _rebound(rules: tuple[Rule, ...], parts: list[Segment], used: AbstractSet[int]) -> list[Segment]:
    """`parts` with each rule whose anonymous set ids the batch (`used`) or an earlier rule holds already bound
    afresh: an anonymous set binds to one rule, so each use gets sets of its own."""
    out: list[Segment] = []
    taken: set[int] = set()
    for rule, kept in zip(rules, parts, strict=True):
        part = kept
        if part.set_ids:
            if not (used.isdisjoint(part.set_ids) and taken.isdisjoint(part.set_ids)):
                part = _plans.rebound(rule, used | taken)
            taken.update(part.set_ids)
        out.append(part)
    return out


def _set_ref(set_: Set) -> bytes:
    return _tlv.strz(NFTA_SET_TABLE, set_.table.name) + _tlv.strz(NFTA_SET_NAME, set_.name)


def _normalised(set_: Set, elements: Iterable[SetElement]) -> tuple[SetElement, ...]:
    return set_.with_elements(elements).elements
