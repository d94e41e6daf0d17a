"""A transaction: an ordered list of tagged nf_tables messages, framed by BATCH_BEGIN/BATCH_END.

Building a batch is pure: each message records the model object it came from (`Message.subject`) so that the
transport can name the offending object when the kernel rejects a message. The same sequence of calls always
gives the same bytes.
"""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    NFTA_RULE_EXPRESSIONS,
    NFTA_SET_ELEM_LIST_SET_ID,
    NFTA_SET_ID,
    NFTA_SET_NAME,
    NFTA_SET_TABLE,
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
)
from netlink_nft._elements import SetElement
from netlink_nft._model import Chain, Rule, Set, Table

Subject = Table | Chain | Set | Rule

_NLMSG = struct.Struct("=IHHIIBBH")  # nlmsghdr + nfgenmsg (res_id packed pre-swapped)
_RES_ID_NFTABLES = int.from_bytes(NFNL_SUBSYS_NFTABLES.to_bytes(2, "big"), sys.byteorder)  # htons(10)
_CREATE = NLM_F_REQUEST | NLM_F_CREATE
_BE32 = struct.Struct(">I")

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


class _Log:
    """The messages of a batch, kept column by column: a pod's batch has a hundred messages and is built for
    every update, and one `Message` object per message (plus the garbage collections those allocations trigger)
    cost more than encoding them; `Message` values are made only when asked for (errors, inspection)."""

    __slots__ = ("bodies", "details", "families", "flags", "kinds", "subjects")

    def __init__(self) -> None:
        self.kinds: list[int] = []
        self.flags: list[int] = []
        self.families: list[int] = []
        self.bodies: list[bytes] = []
        self.subjects: list[Subject] = []
        self.details: list[str] = []

    def __len__(self) -> int:
        return len(self.kinds)

    def copy(self) -> _Log:
        log = _Log()
        log.kinds, log.flags, log.families = self.kinds[:], self.flags[:], self.families[:]
        log.bodies, log.subjects, log.details = self.bodies[:], self.subjects[:], self.details[:]
        return log

    def message(self, index: int) -> Message:
        return Message(
            self.kinds[index],
            self.flags[index],
            self.families[index],
            self.bodies[index],
            self.subjects[index],
            self.details[index],
        )

    def messages(self) -> tuple[Message, ...]:
        return tuple(map(Message, self.kinds, self.flags, self.families, self.bodies, self.subjects, self.details))


@dataclass(frozen=True)
class EncodedBatch:
    """The bytes of one transaction and the messages behind its sequence numbers."""

    data: bytes
    first_seq: int
    log: _Log = field(repr=False, compare=False)
    acked_each: bool = False  # every message carries NLM_F_ACK (commit confirmation on kernels before 6.10)

    @property
    def count(self) -> int:
        """The number of messages between BATCH_BEGIN and BATCH_END."""
        return len(self.log)

    @functools.cached_property
    def messages(self) -> tuple[Message, ...]:
        return self.log.messages()

    @property
    def end_seq(self) -> int:
        return self.first_seq + len(self.log) + 1

    def message_at(self, seq: int) -> Message | None:
        """The message sent with `seq` (None for BATCH_BEGIN/END)."""
        index = seq - self.first_seq - 1
        return self.log.message(index) if 0 <= index < len(self.log) else None


def _frame(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes) -> bytes:
    return _NLMSG.pack(20 + len(body), kind, flags, seq, 0, family, 0, res_id) + body


class Batch:
    """Builder of one transaction. Objects are added in call order; sets get transaction ids (`NFTA_SET_ID`)."""

    def __init__(self) -> None:
        self._log = _Log()
        self._set_ids: dict[_plans.SetKey, int] = {}
        self._last_set_id = 0

    @property
    def messages(self) -> tuple[Message, ...]:
        return self._log.messages()

    def __len__(self) -> int:
        return len(self._log)

    def _add(self, kind: int, flags: int, subject: Subject, body: bytes, detail: str = "") -> None:
        log = self._log
        log.kinds.append(kind)
        log.flags.append(flags)
        log.families.append((subject if type(subject) is Table else subject.table).family)  # type: ignore[union-attr]
        log.bodies.append(body)
        log.subjects.append(subject)
        log.details.append(detail)

    # --- tables --------------------------------------------------------------------------------------------------

    def add_table(self, table: Table, *, exclusive: bool = False) -> None:
        """Create the table; without `exclusive` an existing table is fine (nft `add table`)."""
        flags = NLM_F_REQUEST | (NLM_F_EXCL if exclusive else 0)
        self._add(NFT_MSG_NEWTABLE, flags, table, _objects.encode_table(table))

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
        self._add(NFT_MSG_NEWCHAIN, _CREATE, chain, _objects.encode_chain(chain))

    def delete_chain(self, chain: Chain) -> None:
        self._add(NFT_MSG_DELCHAIN, NLM_F_REQUEST, chain, _objects.encode_chain_ref(chain))

    def destroy_chain(self, chain: Chain) -> None:
        self._add(NFT_MSG_DESTROYCHAIN, NLM_F_REQUEST, chain, _objects.encode_chain_ref(chain))

    def flush_chain(self, chain: Chain) -> None:
        self._add(NFT_MSG_DELRULE, NLM_F_REQUEST, chain, _objects.encode_flush(chain.table, chain.name), "flush")

    # --- sets ----------------------------------------------------------------------------------------------------

    def add_set(self, set_: Set, *, flush: bool = False) -> None:
        """Create the set (an existing identical set is fine) and add its elements; with `flush`, the elements
        of an existing set are deleted first, so the set ends up holding exactly `set_.elements`."""
        set_id = self._new_set_id()
        self._set_ids[_plans.set_key(set_.table, set_.name)] = set_id
        plan = _plans.set_plan(set_)
        self._add(NFT_MSG_NEWSET, _CREATE, set_, plan.newset_head + _tlv.be32(NFTA_SET_ID, set_id) + plan.newset_tail)
        if flush:
            self._add(NFT_MSG_DELSETELEM, NLM_F_REQUEST, set_, plan.ref, "flush")
        self._planned_elements(set_, plan, set_id)

    def delete_set(self, set_: Set) -> None:
        self._add(NFT_MSG_DELSET, NLM_F_REQUEST, set_, _set_ref(set_))

    def destroy_set(self, set_: Set) -> None:
        self._add(NFT_MSG_DESTROYSET, NLM_F_REQUEST, set_, _set_ref(set_))

    def flush_set(self, set_: Set) -> None:
        """Delete every element of the set."""
        self._add(NFT_MSG_DELSETELEM, NLM_F_REQUEST, set_, _set_ref(set_), "flush")

    def add_elements(self, set_: Set, elements: Iterable[SetElement]) -> None:
        set_id = self._set_ids.get(_plans.set_key(set_.table, set_.name))
        self._elements(NFT_MSG_NEWSETELEM, _CREATE, set_, _spec(set_), set_id, _normalised(set_, elements))

    def delete_elements(self, set_: Set, elements: Iterable[SetElement]) -> None:
        """Delete elements; ranges of interval sets must be exactly those in the set."""
        set_id = self._set_ids.get(_plans.set_key(set_.table, set_.name))
        self._elements(NFT_MSG_DELSETELEM, NLM_F_REQUEST, set_, _spec(set_), set_id, _normalised(set_, elements))

    def _new_set_id(self) -> int:
        self._last_set_id += 1
        return self._last_set_id

    def _elements(
        self,
        kind: int,
        flags: int,
        subject: Set | Rule,
        spec: _sets.SetSpec,
        set_id: int | None,
        elements: tuple[SetElement, ...],
    ) -> None:
        for body in _sets.encode_element_lists(spec, set_id, elements):
            self._add(kind, flags, subject, body, f"elements of {spec.name}")

    def _planned_elements(self, subject: Set | Rule, plan: _plans.SetPlan, set_id: int) -> None:
        """NEWSETELEM messages with all the elements of a planned set, created in this batch as `set_id`."""
        head = plan.elements_head + _tlv.be32(NFTA_SET_ELEM_LIST_SET_ID, set_id)
        for nest in plan.element_nests:
            self._add(NFT_MSG_NEWSETELEM, _CREATE, subject, head + nest, plan.detail)

    # --- rules ---------------------------------------------------------------------------------------------------

    def add_rule(self, rule: Rule) -> None:
        """Append the rule to its chain; anonymous sets of its lookups are created just before it."""
        plan = _plans.rule_plan(rule)
        body = plan.body
        if body is None:
            exprs = [e if type(e) is bytes else self._bound(rule, e) for e in plan.exprs]  # type: ignore[arg-type]
            body = plan.head + _tlv.nest(NFTA_RULE_EXPRESSIONS, *exprs) + plan.tail
        self._add(NFT_MSG_NEWRULE, _CREATE | NLM_F_APPEND, rule, body)

    def delete_rule(self, rule: Rule) -> None:
        """Delete one rule by its kernel handle (as read back by a dump)."""
        self._add(NFT_MSG_DELRULE, NLM_F_REQUEST, rule, _objects.encode_rule_ref(rule))

    def destroy_rule(self, rule: Rule) -> None:
        self._add(NFT_MSG_DESTROYRULE, NLM_F_REQUEST, rule, _objects.encode_rule_ref(rule))

    def _bound(self, rule: Rule, lookup: _plans.NamedLookup | _plans.AnonymousLookup) -> bytes:
        """The lookup's encoding with the transaction id of its set; an anonymous set is created here."""
        if type(lookup) is _plans.NamedLookup:
            named_id = self._set_ids.get(lookup.key)
            return lookup.unbound if named_id is None else lookup.head + _BE32.pack(named_id) + lookup.tail
        assert isinstance(lookup, _plans.AnonymousLookup)
        set_id = self._new_set_id()
        plan = lookup.set
        body = plan.newset_head + _tlv.be32(NFTA_SET_ID, set_id) + plan.newset_tail
        self._add(NFT_MSG_NEWSET, _CREATE, rule, body, "anonymous set")
        self._planned_elements(rule, plan, set_id)
        return lookup.head + _BE32.pack(set_id) + lookup.tail

    # --- encoding ------------------------------------------------------------------------------------------------

    def encode(self, seq: int = 0, *, genid: int | None = None, ack_each: bool = False) -> EncodedBatch:
        """Frame the messages with BATCH_BEGIN (seq) and BATCH_END; both END and, with `ack_each`, every message
        request an acknowledgement, so that the transport can confirm the commit on every kernel."""
        begin_body = b"" if genid is None else _tlv.be32(NFNL_BATCH_GENID, genid)
        parts = [_frame(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, _RES_ID_NFTABLES, begin_body)]
        subsys = NFNL_SUBSYS_NFTABLES << 8
        extra = NLM_F_ACK if ack_each else 0
        pack = _NLMSG.pack
        log = self._log
        for offset, kind, flags, family, body in zip(
            range(seq + 1, seq + 1 + len(log)), log.kinds, log.flags, log.families, log.bodies, strict=True
        ):
            parts.append(pack(20 + len(body), subsys | kind, flags | extra, offset, 0, family, 0, 0))
            parts.append(body)
        end_seq = seq + len(log) + 1
        parts.append(_frame(NFNL_MSG_BATCH_END, NLM_F_REQUEST | NLM_F_ACK, end_seq, 0, _RES_ID_NFTABLES, b""))
        return EncodedBatch(b"".join(parts), seq, log.copy(), ack_each)


def _spec(set_: Set) -> _sets.SetSpec:
    return _sets.SetSpec(set_.table.name, set_.name, set_.key, set_.interval, set_.constant, set_.data)


def _set_ref(set_: Set) -> bytes:
    return _tlv.strz(NFTA_SET_TABLE, set_.table.name) + _tlv.strz(NFTA_SET_NAME, set_.name)


def _normalised(set_: Set, elements: Iterable[SetElement]) -> tuple[SetElement, ...]:
    return set_.with_elements(elements).elements
